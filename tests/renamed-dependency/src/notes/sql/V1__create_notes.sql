CREATE TABLE {{tables.notes}} (id INTEGER PRIMARY KEY, body TEXT);
