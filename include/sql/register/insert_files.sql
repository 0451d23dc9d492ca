-- Register a batch of object versions in one statement; versions already registered (same file_id)
-- insert nothing. Parameters are numbered per row (file_id_0, file_id_1, ...); the caller passes
-- each object version once. Run under LOCK {{ register }}, in the registration's transaction.
-- A UNION ALL of SELECTs (not a VALUES list) so the same SQL runs on Redshift and PostgreSQL; the
-- casts type the bound values, NULLs included.
INSERT INTO {{ register }} (
    file_id, file_type, bucket, s3_key, version_id, etag, size_bytes, last_modified,
    status, registered_at, registered_by, attempts
)
SELECT
    batch.file_id, batch.file_type, batch.bucket, batch.s3_key, batch.version_id, batch.etag,
    batch.size_bytes, batch.last_modified, batch.status, batch.registered_at, batch.registered_by, 0
FROM (
{%- for i in rows %}
    {% if not loop.first %}UNION ALL {% endif -%}
    SELECT
        CAST(%(file_id_{{ i }})s AS VARCHAR(64)) AS file_id,
        CAST(%(file_type_{{ i }})s AS VARCHAR(64)) AS file_type,
        CAST(%(bucket_{{ i }})s AS VARCHAR(63)) AS bucket,
        CAST(%(s3_key_{{ i }})s AS VARCHAR(1024)) AS s3_key,
        CAST(%(version_id_{{ i }})s AS VARCHAR(1024)) AS version_id,
        CAST(%(etag_{{ i }})s AS VARCHAR(128)) AS etag,
        CAST(%(size_bytes_{{ i }})s AS BIGINT) AS size_bytes,
        CAST(%(last_modified_{{ i }})s AS TIMESTAMP) AS last_modified,
        CAST(%(status_{{ i }})s AS VARCHAR(20)) AS status,
        CAST(%(registered_at_{{ i }})s AS TIMESTAMP) AS registered_at,
        CAST(%(registered_by_{{ i }})s AS VARCHAR(64)) AS registered_by
{%- endfor %}
) AS batch
WHERE NOT EXISTS (SELECT 1 FROM {{ register }} AS known WHERE known.file_id = batch.file_id);
