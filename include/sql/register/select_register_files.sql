-- The File register view: files filtered by file type, status, registration time and a piece of the
-- key (each filter off when its value is NULL), newest first. SELECT *: columns added later (e.g.
-- batch_id) show up in the view without a change here.
SELECT *
FROM {{ register }}
WHERE (%(file_type)s IS NULL OR file_type = %(file_type)s)
  AND (%(status)s IS NULL OR status = %(status)s)
  AND (%(since)s IS NULL OR registered_at >= %(since)s)
  AND (%(until)s IS NULL OR registered_at < %(until)s)
  AND (%(key_contains)s IS NULL OR STRPOS(s3_key, %(key_contains)s) > 0)
ORDER BY registered_at DESC, file_id
LIMIT %(limit)s;
