-- IN_PROGRESS -> FILTERED_OUT: the object under the key is no longer the registered version (a newer
-- upload overwrote it, or it was deleted): this version can never be read again. The message says
-- which ETag was registered and which was found; a newer upload is registered as its own file.
UPDATE {{ register }}
SET status = 'FILTERED_OUT',
    finished_at = getdate(),
    lease_expires_at = NULL,
    error_message = %(error_message)s,
    history = coalesce(history || chr(10), '') || 'object changed before its load: ' || left(%(error_message)s, 500)
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND run_id = %(run_id)s
  AND loaded_at IS NULL;
