-- Forced reload (the force param): DONE / DONE_WITH_REJECTS -> IN_PROGRESS for this run, its load
-- forgotten so the COPY runs again (the COPY step deletes the file's earlier rows first, by file_id,
-- in its own transaction). The earlier load is kept in history.
UPDATE {{ register }}
SET status = 'IN_PROGRESS',
    claimed_at = getdate(),
    dag_id = %(dag_id)s,
    run_id = %(run_id)s,
    lease_expires_at = %(lease_expires_at)s,
    attempts = attempts + 1,
    history = coalesce(history || chr(10), '') || 'attempt ' || CAST(attempts AS VARCHAR(10)) || ' ' || status || ': '
              || CAST(coalesce(rows_loaded, 0) AS VARCHAR(20)) || ' rows loaded, '
              || CAST(coalesce(rows_rejected, 0) AS VARCHAR(20)) || ' rejected by COPY query '
              || coalesce(CAST(copy_query_id AS VARCHAR(20)), '?') || ' (forced reload ' || CAST(getdate() AS VARCHAR(30)) || ')',
    loaded_at = NULL,
    copy_query_id = NULL,
    rows_loaded = NULL,
    rows_rejected = NULL,
    first_error = NULL,
    error_report_key = NULL,
    staged_from = NULL,
    archive_key = NULL,
    error_message = NULL,
    finished_at = NULL
WHERE file_id = %(file_id)s
  AND file_type = %(file_type)s
  AND status IN ('DONE', 'DONE_WITH_REJECTS');
