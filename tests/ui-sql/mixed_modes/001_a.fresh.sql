-- migrate: no-transaction
CREATE TABLE {{tables.t}} (id INT);
