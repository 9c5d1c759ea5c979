DROP TABLE {{tables.notes}};
