-- FAILED -> NEW after its cause was fixed; the earlier attempt is kept in history.
UPDATE {{ register }}
SET status = 'NEW',
    history = coalesce(history || chr(10), '') || 'attempt ' || CAST(attempts AS VARCHAR(10)) || ' FAILED: '
              || coalesce(left(error_message, 500), '') || ' (replayed ' || CAST(getdate() AS VARCHAR(30)) || ')',
    error_message = NULL,
    -- A file whose COPY committed before a later step failed keeps its load (loaded_at, counts):
    -- the replayed run skips the COPY, so its rows are never loaded twice.
    first_error = CASE WHEN loaded_at IS NULL THEN NULL ELSE first_error END,
    rows_rejected = CASE WHEN loaded_at IS NULL THEN NULL ELSE rows_rejected END,
    copy_query_id = CASE WHEN loaded_at IS NULL THEN NULL ELSE copy_query_id END,
    finished_at = NULL,
    claimed_at = NULL,
    dag_id = NULL,
    run_id = NULL,
    quarantine_key = NULL,
    error_report_key = CASE WHEN loaded_at IS NULL THEN NULL ELSE error_report_key END
WHERE file_id = %(file_id)s
  AND status = 'FAILED';
