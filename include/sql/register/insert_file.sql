-- Register one object version; a duplicate event (same file_id) inserts nothing.
-- Run under LOCK {{ register }} so two registrations of the same object cannot both insert.
INSERT INTO {{ register }} (
    file_id, file_type, bucket, s3_key, version_id, etag, size_bytes, last_modified,
    status, registered_at, registered_by, attempts
)
SELECT
    %(file_id)s, %(file_type)s, %(bucket)s, %(s3_key)s, %(version_id)s, %(etag)s, %(size_bytes)s,
    %(last_modified)s, %(status)s, %(registered_at)s, %(registered_by)s, 0
WHERE NOT EXISTS (SELECT 1 FROM {{ register }} WHERE file_id = %(file_id)s);
