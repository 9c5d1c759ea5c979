CREATE TABLE x_create_users (id INT);
