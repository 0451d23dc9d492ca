-- Bulk replay: the FAILED files of one file type registered in [since, until), oldest first.
SELECT file_id, s3_key, registered_at
FROM {{ register }}
WHERE file_type = %(file_type)s
  AND status = 'FAILED'
  AND registered_at >= %(since)s
  AND registered_at < %(until)s
ORDER BY registered_at, file_id
LIMIT %(limit)s;
