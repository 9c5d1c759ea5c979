CREATE TABLE {{tables.t}} (id INT);
