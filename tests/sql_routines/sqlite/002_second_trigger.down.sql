-- migrate: no-transaction
DROP INDEX routines_sqlite_log_id;
DROP TRIGGER routines_sqlite_twice;
