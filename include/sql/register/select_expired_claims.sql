-- Claims whose run stopped renewing its lease (a killed worker, a lost scheduler): the reaper's work.
SELECT file_id, file_type, bucket, s3_key, size_bytes, attempts, dag_id, run_id, loaded_at,
       rows_loaded, rows_rejected, lease_expires_at
FROM {{ register }}
WHERE status = 'IN_PROGRESS'
  AND lease_expires_at < %(now)s
ORDER BY lease_expires_at;
