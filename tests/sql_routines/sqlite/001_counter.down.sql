DROP TRIGGER routines_sqlite_count;
DROP TABLE routines_sqlite_log;
DROP TABLE {{tables.routines_sqlite}};
