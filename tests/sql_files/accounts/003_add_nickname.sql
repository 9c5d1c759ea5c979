-- migrate: no-transaction
-- Outside a transaction, statement by statement (as PostgreSQL's CREATE INDEX CONCURRENTLY needs).
ALTER TABLE {{tables.accounts}} ADD COLUMN nickname VARCHAR(50);
UPDATE {{tables.accounts}} SET nickname = name;
