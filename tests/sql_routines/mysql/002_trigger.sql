-- migrate: no-transaction
CREATE TABLE routines_mysql_log (id INT, note TEXT);
CREATE TRIGGER routines_mysql_count AFTER INSERT ON routines_mysql_log FOR EACH ROW
BEGIN
  UPDATE {{tables.routines_mysql}} SET n = n + CASE WHEN NEW.note = 'end;' THEN 10 ELSE 1 END;
END;
