-- Heartbeat of a run: renew the lease of every file it holds (0 rows: it holds none any more).
UPDATE {{ register }}
SET lease_expires_at = %(lease_expires_at)s
WHERE run_id = %(run_id)s
  AND status = 'IN_PROGRESS'
  AND file_id IN %(file_ids)s;
