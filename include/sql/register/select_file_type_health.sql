-- Per file type: its backlog (NEW files, the oldest NEW registration) and its last arrival (any
-- status), for the File register view, the backlog metrics and the backlog / freshness alerts.
SELECT file_type,
       SUM(CASE WHEN status = 'NEW' THEN 1 ELSE 0 END)              AS new_files,
       MIN(CASE WHEN status = 'NEW' THEN registered_at END)          AS oldest_new_at,
       SUM(CASE WHEN status = 'IN_PROGRESS' THEN 1 ELSE 0 END)      AS in_progress,
       SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END)           AS failed_files,
       MAX(registered_at)                                           AS last_registered_at
FROM {{ register }}
WHERE file_type IS NOT NULL
GROUP BY file_type;
