-- GitHub events: JSON 'auto' fills the columns whose names match top-level keys.
CREATE TABLE IF NOT EXISTS {{ target }} (
    id         varchar(20),
    type       varchar(40),
    created_at timestamp,
    public     boolean,
    ingest_file_id varchar(64)  -- the register file_id of the file that loaded the row
)
SORTKEY (created_at);
