-- IN_PROGRESS -> FAILED with what a person needs to act on it. The object stays where it is
-- (landing, or quarantine when the failure was the file's own).
UPDATE {{ register }}
SET status = 'FAILED',
    finished_at = getdate(),
    lease_expires_at = NULL,
    error_message = %(error_message)s,
    first_error = coalesce(%(first_error)s, first_error),
    rows_rejected = coalesce(%(rows_rejected)s, rows_rejected),
    copy_query_id = coalesce(%(copy_query_id)s, copy_query_id),
    error_report_key = coalesce(%(error_report_key)s, error_report_key),
    quarantine_key = coalesce(%(quarantine_key)s, quarantine_key)
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND run_id = %(run_id)s;
