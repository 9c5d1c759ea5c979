-- A trigger's body holds statements of its own: the file runs whole, in one transaction.
CREATE TABLE {{tables.routines_sqlite}} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
INSERT INTO {{tables.routines_sqlite}} (id, n) VALUES (1, 0);
CREATE TABLE routines_sqlite_log (id INTEGER, note TEXT);
CREATE TRIGGER routines_sqlite_count AFTER INSERT ON routines_sqlite_log FOR EACH ROW
BEGIN
  UPDATE {{tables.routines_sqlite}} SET n = CASE WHEN NEW.note = 'end;' THEN n + 10 ELSE n + 1 END;
  UPDATE {{tables.routines_sqlite}} SET n = n + 100 WHERE NEW.id < 0;
END;
