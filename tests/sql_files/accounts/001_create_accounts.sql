CREATE TABLE {{tables.accounts}} (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL
);
