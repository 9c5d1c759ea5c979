ALTER TABLE {{tables.events}} ADD COLUMN kind VARCHAR(20)
