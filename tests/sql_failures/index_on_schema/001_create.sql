-- migrate: no-transaction
CREATE TABLE index_on_schema (id INTEGER);
CREATE INDEX index_on_schema_id ON {{schema}}.index_on_schema (id);
