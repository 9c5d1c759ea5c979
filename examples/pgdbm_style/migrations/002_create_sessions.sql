CREATE TABLE {{tables.sessions}} (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES {{tables.users}} (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON {{tables.sessions}} (user_id);
