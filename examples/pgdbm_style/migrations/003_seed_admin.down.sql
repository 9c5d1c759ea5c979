-- migrate: no-transaction
DELETE FROM {{tables.sessions}} WHERE id = 1;
DELETE FROM {{tables.users}} WHERE id = 1;
