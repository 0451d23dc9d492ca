-- Tweets (newline-delimited JSON); JSON 'auto' fills the columns whose names match top-level keys.
CREATE TABLE IF NOT EXISTS {{ target }} (
    id             bigint,
    id_str         varchar(32),
    created_at     varchar(40),
    lang           varchar(16),
    text           varchar(max),
    retweet_count  integer,
    favorite_count integer,
    truncated      boolean,
    ingest_file_id varchar(64)  -- the register file_id of the file that loaded the row
)
DISTKEY (id);
