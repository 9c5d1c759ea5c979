-- migrate: no-transaction
-- Outside a transaction the file runs statement by statement: the trigger is one of them.
CREATE TRIGGER routines_sqlite_twice AFTER INSERT ON routines_sqlite_log FOR EACH ROW
BEGIN
  UPDATE {{tables.routines_sqlite}} SET n = n + 1000;
END;
CREATE INDEX routines_sqlite_log_id ON routines_sqlite_log (id);
