-- migrate: no-transaction
CREATE FUNCTION routines_postgres_total() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT n FROM {{tables.routines_postgres}} WHERE id = 1;
END;
CREATE INDEX CONCURRENTLY routines_postgres_n ON {{tables.routines_postgres}} (n);
