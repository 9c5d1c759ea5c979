DROP TABLE {{tables.events}}
