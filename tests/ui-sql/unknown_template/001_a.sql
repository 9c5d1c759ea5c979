CREATE TABLE {{table.t}} (id INT);
