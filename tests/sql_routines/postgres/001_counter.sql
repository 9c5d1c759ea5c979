-- A SQL-standard function body (BEGIN ATOMIC ... END) holds statements of its own.
CREATE TABLE {{tables.routines_postgres}} (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0);
INSERT INTO {{tables.routines_postgres}} (id, n) VALUES (1, 0);
CREATE PROCEDURE routines_postgres_bump() LANGUAGE sql
BEGIN ATOMIC
  UPDATE {{tables.routines_postgres}} SET n = n + 1;
  UPDATE {{tables.routines_postgres}} SET n = n + CASE WHEN n > 100 THEN 0 ELSE 10 END;
END;
