-- Per-file outcome of a batch load, in the load's transaction, for one set-based UPDATE of the
-- register (Redshift has no UPDATE ... FROM (VALUES ...)). Temporary: this session only.
DROP TABLE IF EXISTS batch_results;
CREATE TEMP TABLE batch_results (
    file_id          VARCHAR(64) NOT NULL,
    copy_query_id    BIGINT,
    rows_loaded      BIGINT,
    rows_rejected    BIGINT,
    first_error      VARCHAR(1024),
    error_report_key VARCHAR(1024)
);
