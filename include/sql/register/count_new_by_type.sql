-- The trigger's question, asked once per poll for every waiting file type of a triggerer:
-- how many NEW files of each type does the register hold? (one row per file type with any)
SELECT file_type, count(*)
FROM {{ register }}
WHERE status = 'NEW' AND file_type IS NOT NULL
GROUP BY file_type;
