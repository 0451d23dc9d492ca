-- In the COPY's own transaction: guarded so a second COPY of the same claim cannot also commit.
UPDATE {{ register }}
SET loaded_at = getdate(),
    copy_query_id = %(copy_query_id)s,
    rows_loaded = %(rows_loaded)s,
    rows_rejected = %(rows_rejected)s,
    first_error = %(first_error)s,
    error_report_key = %(error_report_key)s
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND run_id = %(run_id)s
  AND loaded_at IS NULL;
