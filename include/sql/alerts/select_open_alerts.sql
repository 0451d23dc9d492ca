SELECT file_type, kind, opened_at, detail
FROM {{ alerts }}
WHERE resolved_at IS NULL;
