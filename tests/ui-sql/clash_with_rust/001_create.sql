CREATE TABLE x_001_create (id INT);
