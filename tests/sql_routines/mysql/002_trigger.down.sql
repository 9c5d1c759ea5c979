-- migrate: no-transaction
DROP TRIGGER routines_mysql_count;
DROP TABLE routines_mysql_log;
