-- The files a run holds right now (a retry or a cleared step of the same run keeps its claims).
SELECT file_id, file_type, bucket, s3_key, size_bytes, etag
FROM {{ register }}
WHERE file_type = %(file_type)s
  AND status = 'IN_PROGRESS'
  AND dag_id = %(dag_id)s
  AND run_id = %(run_id)s
ORDER BY last_modified, registered_at, file_id;
