-- migrate: no-transaction
-- Statement by statement, outside a transaction: the way to run what cannot run in one
-- (PostgreSQL's CREATE INDEX CONCURRENTLY); here, a seed that is safe to run in parts.
INSERT INTO {{tables.users}} (id, email, full_name, settings)
    VALUES (1, 'admin@example.com', 'Admin', '{"role": {"name": "admin"}}');
INSERT INTO {{tables.sessions}} (id, user_id, created_at) VALUES (1, 1, 0);
