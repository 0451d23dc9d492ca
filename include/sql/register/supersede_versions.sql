-- After registering an upload: COPY reads only the current object under a key, so earlier versions
-- of the key still NEW can no longer be loaded. They become FILTERED_OUT, pointing at the newest
-- version (by S3 last-modified, then registration); a late event for an older version is filtered
-- out the same way. Run under LOCK {{ register }}, in the registration's transaction.
UPDATE {{ register }}
SET status = 'FILTERED_OUT',
    superseded_by = newest.file_id,
    finished_at = getdate(),
    history = coalesce(history || chr(10), '') || 'a newer upload of the key was registered: ' || newest.file_id
FROM (
    SELECT file_id
    FROM {{ register }}
    WHERE bucket = %(bucket)s
      AND s3_key = %(s3_key)s
      AND status <> 'UNMATCHED'
    ORDER BY last_modified DESC NULLS LAST, registered_at DESC, file_id DESC
    LIMIT 1
) AS newest
WHERE {{ register }}.bucket = %(bucket)s
  AND {{ register }}.s3_key = %(s3_key)s
  AND {{ register }}.status = 'NEW'
  AND {{ register }}.file_id <> newest.file_id;
