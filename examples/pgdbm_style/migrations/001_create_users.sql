CREATE TABLE {{tables.users}} (
    id INTEGER PRIMARY KEY,
    email VARCHAR(255) NOT NULL UNIQUE,
    full_name VARCHAR(255),
    settings TEXT NOT NULL DEFAULT '{}'
);
