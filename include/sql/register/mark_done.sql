-- IN_PROGRESS -> DONE, or DONE_WITH_REJECTS when COPY skipped rows (MAXERROR > 0).
UPDATE {{ register }}
SET status = CASE WHEN coalesce(rows_rejected, 0) > 0 THEN 'DONE_WITH_REJECTS' ELSE 'DONE' END,
    finished_at = getdate(),
    lease_expires_at = NULL
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND loaded_at IS NOT NULL;
