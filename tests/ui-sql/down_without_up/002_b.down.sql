CREATE TABLE x_002_b_down (id INT);
