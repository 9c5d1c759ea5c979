DROP TABLE {{tables.accounts}};
