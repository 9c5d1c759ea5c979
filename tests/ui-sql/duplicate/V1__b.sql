CREATE TABLE x__1__b (id INT);
