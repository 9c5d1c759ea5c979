-- migrate: no-transaction
DROP INDEX CONCURRENTLY routines_postgres_n;
DROP FUNCTION routines_postgres_total();
