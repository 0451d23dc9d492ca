-- Earlier versions of the same S3 key whose rows are in the warehouse (their COPY committed), for
-- target.on_new_version: replace. Versions already replaced are left out.
SELECT file_id, status, last_modified, registered_at, rows_loaded
FROM {{ register }}
WHERE bucket = %(bucket)s
  AND s3_key = %(s3_key)s
  AND file_id <> %(file_id)s
  AND loaded_at IS NOT NULL
  AND status <> 'REPLACED'
ORDER BY last_modified, registered_at;
