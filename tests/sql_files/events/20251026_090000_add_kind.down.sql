ALTER TABLE {{tables.events}} DROP COLUMN kind
