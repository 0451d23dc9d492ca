-- A retry or a cleared task of the same run keeps its claim: renew the lease.
UPDATE {{ register }}
SET lease_expires_at = %(lease_expires_at)s
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND dag_id = %(dag_id)s
  AND run_id = %(run_id)s;
