ALTER TABLE {{tables.accounts}} DROP COLUMN email;
