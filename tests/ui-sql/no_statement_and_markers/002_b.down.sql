-- undo b
-- migrate:no-transaction
DROP TABLE b;
