-- migrate: no-transaction
CREATE TABLE c (id INT);
