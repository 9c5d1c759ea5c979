DROP TABLE {{tables.notes}}
