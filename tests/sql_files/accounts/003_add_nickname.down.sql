-- migrate: no-transaction
ALTER TABLE {{tables.accounts}} DROP COLUMN nickname;
