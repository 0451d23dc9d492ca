-- FAILED -> NEW after its cause was fixed; the earlier attempt is kept in history.
UPDATE {{ register }}
SET status = 'NEW',
    history = coalesce(history || chr(10), '') || 'attempt ' || CAST(attempts AS VARCHAR(10)) || ' FAILED: '
              || coalesce(left(error_message, 500), '') || ' (replayed ' || CAST(getdate() AS VARCHAR(30)) || ')',
    error_message = NULL,
    first_error = NULL,
    rows_rejected = NULL,
    copy_query_id = NULL,
    loaded_at = NULL,
    rows_loaded = NULL,
    finished_at = NULL,
    claimed_at = NULL,
    dag_id = NULL,
    run_id = NULL,
    quarantine_key = NULL,
    error_report_key = NULL
WHERE file_id = %(file_id)s
  AND status = 'FAILED';
