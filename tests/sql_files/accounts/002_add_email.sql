-- Two statements in one file, one transaction where the database allows it.
ALTER TABLE {{tables.accounts}} ADD COLUMN email VARCHAR(200);
UPDATE {{tables.accounts}} SET email = 'nobody; really' WHERE email IS NULL;
