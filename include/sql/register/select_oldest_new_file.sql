-- The oldest NEW file of one file type (what a backlog alert names).
SELECT file_id, bucket, s3_key, size_bytes, registered_at
FROM {{ register }}
WHERE file_type = %(file_type)s AND status = 'NEW'
ORDER BY registered_at, file_id
LIMIT 1;
