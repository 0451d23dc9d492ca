-- Heartbeat: every step of the run that holds the claim renews its lease (a retry or a cleared task
-- of the same run keeps the claim). 0 rows: the claim is lost (reaped, or another run).
UPDATE {{ register }}
SET lease_expires_at = %(lease_expires_at)s
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND run_id = %(run_id)s;
