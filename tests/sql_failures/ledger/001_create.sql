CREATE TABLE {{tables.ledger}} (id INTEGER PRIMARY KEY);
