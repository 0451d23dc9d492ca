-- Rows rejected per file by one COPY (AWS "SYS_LOAD_ERROR_DETAIL").
SELECT trim(file_name) AS file_name, count(*) AS rows_rejected
FROM sys_load_error_detail
WHERE query_id = %(query_id)s
GROUP BY trim(file_name);
