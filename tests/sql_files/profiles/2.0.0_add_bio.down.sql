ALTER TABLE {{tables.profiles}} DROP COLUMN bio
