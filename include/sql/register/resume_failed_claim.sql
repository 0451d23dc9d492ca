-- A cleared task of the run whose attempt failed takes its file back: FAILED -> IN_PROGRESS for the
-- same run, the failed attempt kept in history. A committed load (loaded_at) is kept.
UPDATE {{ register }}
SET status = 'IN_PROGRESS',
    lease_expires_at = %(lease_expires_at)s,
    attempts = attempts + 1,
    history = coalesce(history || chr(10), '') || 'attempt ' || CAST(attempts AS VARCHAR(10)) || ' FAILED: '
              || coalesce(left(error_message, 500), '') || ' (task cleared)',
    error_message = NULL,
    first_error = CASE WHEN loaded_at IS NULL THEN NULL ELSE first_error END,
    rows_rejected = CASE WHEN loaded_at IS NULL THEN NULL ELSE rows_rejected END,
    error_report_key = CASE WHEN loaded_at IS NULL THEN NULL ELSE error_report_key END,
    quarantine_key = NULL,
    finished_at = NULL
WHERE file_id = %(file_id)s
  AND status = 'FAILED'
  AND run_id = %(run_id)s;
