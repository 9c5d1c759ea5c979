ALTER TABLE {{tables.profiles}} ADD COLUMN bio VARCHAR(300)
