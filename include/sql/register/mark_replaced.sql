-- In the new version's COPY transaction: an earlier version of the same key whose rows it deleted.
-- Terminal; superseded_by points at the version that replaced it. A run still holding it loses its
-- claim (its next step finds the file REPLACED and stops). A FAILED file whose COPY had committed
-- (it failed while archiving) has rows too: they are replaced the same way.
UPDATE {{ register }}
SET status = 'REPLACED',
    superseded_by = %(replaced_by)s,
    lease_expires_at = NULL,
    finished_at = getdate(),
    history = coalesce(history || chr(10), '') || 'was ' || status || ' with ' || CAST(coalesce(rows_loaded, 0) AS VARCHAR(20))
              || ' rows; replaced by file ' || %(replaced_by)s || ', ' || CAST(%(rows_deleted)s AS VARCHAR(20))
              || ' rows deleted (' || CAST(getdate() AS VARCHAR(30)) || ')'
WHERE file_id = %(file_id)s
  AND loaded_at IS NOT NULL
  AND status IN ('DONE', 'DONE_WITH_REJECTS', 'IN_PROGRESS', 'FAILED');
