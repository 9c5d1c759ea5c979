CREATE TABLE {{tables.{{schema}}}} (id INT);
