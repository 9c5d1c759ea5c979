-- migrate: no-transaction
DROP TABLE {{tables.t}};
