-- NEW (or, for a rerun by file_id, FAILED) -> IN_PROGRESS for this run, with a lease.
-- Guarded: a file another run already claimed is not taken (0 rows updated).
UPDATE {{ register }}
SET status = 'IN_PROGRESS',
    claimed_at = getdate(),
    dag_id = %(dag_id)s,
    run_id = %(run_id)s,
    lease_expires_at = %(lease_expires_at)s,
    attempts = attempts + 1,
    history = CASE WHEN status = 'FAILED'
                   THEN coalesce(history || chr(10), '') || 'attempt ' || CAST(attempts AS VARCHAR(10)) || ' FAILED: '
                        || coalesce(left(error_message, 500), '')
                   ELSE history END,
    error_message = NULL,
    -- a file loaded by an earlier attempt keeps its load: the COPY will not run again
    first_error = CASE WHEN loaded_at IS NULL THEN NULL ELSE first_error END,
    finished_at = NULL
WHERE file_id = %(file_id)s
  AND file_type = %(file_type)s
  AND status IN %(from_statuses)s;
