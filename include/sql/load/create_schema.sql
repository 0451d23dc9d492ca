-- The target's schema, before the file type's own DDL creates its table.
CREATE SCHEMA IF NOT EXISTS {{ schema }};
