-- Language names (frictionless-py sample data), id and name.
CREATE TABLE IF NOT EXISTS {{ target }} (
    id   integer,
    name varchar(100)
);
