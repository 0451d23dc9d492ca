-- An expired claim after too many attempts: FAILED, with why. The object stays where it is.
UPDATE {{ register }}
SET status = 'FAILED',
    finished_at = getdate(),
    lease_expires_at = NULL,
    error_message = %(error_message)s
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND lease_expires_at < %(now)s;
