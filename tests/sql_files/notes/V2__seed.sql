-- A literal pair of braces is written \{{ ... }}: it is not a template.
INSERT INTO {{tables.notes}} (id, title, body) VALUES (1, 'welcome', '\{{"greeting": "hello"}}')
