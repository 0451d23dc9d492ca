-- NEW files of one type, newest first (latest selection) or oldest first (all selection), at most
-- %(limit)s of them (a batch takes more, up to its byte budget, in that order).
SELECT file_id, bucket, s3_key, size_bytes, last_modified, etag
FROM {{ register }}
WHERE file_type = %(file_type)s
  AND status = 'NEW'
ORDER BY last_modified {{ order }}, registered_at {{ order }}, file_id {{ order }}
LIMIT %(limit)s;
