-- migrate: no-transaction
INSERT INTO {{tables.ledger}} (id) VALUES (1);
INSERT INTO {{tables.ledger}} (id) VALUES (1);
