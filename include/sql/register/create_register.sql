-- The file register: one row per S3 object version (bucket, key, ETag / version id).
-- Portable between Amazon Redshift and the local stand-in (PostgreSQL): no constraints are relied
-- upon (Redshift does not enforce them); idempotency comes from the deterministic file_id, NOT EXISTS
-- guards and LOCK. Timestamps are UTC (getdate()).
CREATE SCHEMA IF NOT EXISTS {{ register_schema }};

CREATE TABLE IF NOT EXISTS {{ register }} (
    file_id          VARCHAR(64)   NOT NULL,  -- sha256 of bucket, key and version id / ETag
    file_type        VARCHAR(64),             -- NULL when no file type matches the key
    bucket           VARCHAR(63)   NOT NULL,
    s3_key           VARCHAR(1024) NOT NULL,
    version_id       VARCHAR(1024),
    etag             VARCHAR(128),
    size_bytes       BIGINT,
    last_modified    TIMESTAMP,
    status           VARCHAR(20)   NOT NULL,  -- NEW IN_PROGRESS DONE DONE_WITH_REJECTS FAILED FILTERED_OUT UNMATCHED
    registered_at    TIMESTAMP     NOT NULL,
    registered_by    VARCHAR(64),             -- lambda, cli, reconcile
    attempts         INTEGER       NOT NULL,
    claimed_at       TIMESTAMP,
    dag_id           VARCHAR(250),
    run_id           VARCHAR(250),
    lease_expires_at TIMESTAMP,
    staged_from      VARCHAR(1024),           -- what COPY read when a prepare step staged the file
    loaded_at        TIMESTAMP,
    copy_query_id    BIGINT,
    rows_loaded      BIGINT,
    rows_rejected    BIGINT,
    first_error      VARCHAR(1024),
    error_report_key VARCHAR(1024),
    archive_key      VARCHAR(1024),
    quarantine_key   VARCHAR(1024),
    superseded_by    VARCHAR(64),
    finished_at      TIMESTAMP,
    error_message    VARCHAR(4096),
    history          VARCHAR(65535)           -- earlier attempts, one line each (replays keep them)
);
