DROP TABLE {{tables.sessions}};
