ALTER TABLE {{tables.notes}} DROP COLUMN body
