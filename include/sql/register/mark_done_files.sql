-- IN_PROGRESS -> DONE / DONE_WITH_REJECTS for every archived file of a batch, with its archive key.
UPDATE {{ register }}
SET status = CASE WHEN coalesce({{ register }}.rows_rejected, 0) > 0 THEN 'DONE_WITH_REJECTS' ELSE 'DONE' END,
    archive_key = batch_archived.archive_key,
    finished_at = getdate(),
    lease_expires_at = NULL
FROM batch_archived
WHERE {{ register }}.file_id = batch_archived.file_id
  AND {{ register }}.status = 'IN_PROGRESS'
  AND {{ register }}.run_id = %(run_id)s
  AND {{ register }}.loaded_at IS NOT NULL;
