-- Opens an incident unless one is open already (rowcount 1: this caller sends the alert).
INSERT INTO {{ alerts }} (file_type, kind, opened_at, detail)
SELECT %(file_type)s, %(kind)s, %(now)s, %(detail)s
WHERE NOT EXISTS (
    SELECT 1 FROM {{ alerts }}
    WHERE file_type = %(file_type)s AND kind = %(kind)s AND resolved_at IS NULL
);
