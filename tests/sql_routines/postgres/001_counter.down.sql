DROP PROCEDURE routines_postgres_bump();
DROP TABLE {{tables.routines_postgres}};
