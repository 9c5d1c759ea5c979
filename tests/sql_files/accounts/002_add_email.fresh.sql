-- A new database gets the table as 001 and 002 leave it, in one statement (install_fresh).
CREATE TABLE {{tables.accounts}} (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200)
);
