ALTER TABLE {{tables.notes}} ADD COLUMN body VARCHAR(500)
