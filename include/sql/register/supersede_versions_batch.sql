-- After registering a batch: for each of its keys, the versions still NEW other than the newest
-- (by S3 last-modified, then registration) become FILTERED_OUT, pointing at the newest. The batch
-- form of supersede_versions.sql: COPY reads only the current object under a key. Run under
-- LOCK {{ register }}, in the registration's transaction.
UPDATE {{ register }}
SET status = 'FILTERED_OUT',
    superseded_by = newest.file_id,
    finished_at = getdate(),
    history = coalesce(history || chr(10), '') || 'a newer upload of the key was registered: ' || newest.file_id
FROM (
    SELECT s3_key, file_id
    FROM (
        SELECT
            s3_key,
            file_id,
            ROW_NUMBER() OVER (
                PARTITION BY s3_key
                ORDER BY last_modified DESC NULLS LAST, registered_at DESC, file_id DESC
            ) AS rank_by_age
        FROM {{ register }}
        WHERE bucket = %(bucket)s
          AND s3_key IN %(s3_keys)s
          AND status <> 'UNMATCHED'
    ) AS ranked
    WHERE rank_by_age = 1
) AS newest
WHERE {{ register }}.bucket = %(bucket)s
  AND {{ register }}.s3_key = newest.s3_key
  AND {{ register }}.status = 'NEW'
  AND {{ register }}.file_id <> newest.file_id;
