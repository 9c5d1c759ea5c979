DROP PROCEDURE routines_mysql_bump;
DROP TABLE {{tables.routines_mysql}};
