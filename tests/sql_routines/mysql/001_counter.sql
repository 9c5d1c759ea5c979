-- A procedure's body holds statements of its own, and IF, WHILE and CASE blocks.
CREATE TABLE {{tables.routines_mysql}} (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0);
INSERT INTO {{tables.routines_mysql}} (id, n) VALUES (1, 0);
CREATE PROCEDURE routines_mysql_bump(IN times INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  WHILE i < times DO
    IF i >= 0 THEN
      UPDATE {{tables.routines_mysql}} SET n = n + 1;
    END IF;
    SET i = i + 1;
  END WHILE;
  CASE times
    WHEN 0 THEN UPDATE {{tables.routines_mysql}} SET n = -1;
    ELSE BEGIN END;
  END CASE;
END;
