-- (Chosen by settings.load_errors_source = sys_load_error_detail: Serverless.)
-- Lines scanned per file by one COPY (Serverless and provisioned; AWS "SYS_LOAD_DETAIL").
SELECT trim(file_name) AS file_name, sum(lines_scanned) AS lines_scanned
FROM sys_load_detail
WHERE query_id = %(query_id)s
GROUP BY trim(file_name);
