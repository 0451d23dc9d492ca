-- Language names (frictionless-py sample data), id and name.
CREATE TABLE IF NOT EXISTS {{ target }} (
    id             integer,
    name           varchar(100),
    ingest_file_id varchar(64)  -- the register file_id of the file that loaded the row
);
