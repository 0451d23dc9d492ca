-- Rows a COPY rejected, from SYS_LOAD_ERROR_DETAIL (Serverless and provisioned; AWS
-- "SYS_LOAD_ERROR_DETAIL"). That view has no raw field value.
SELECT trim(file_name) AS file_name,
       line_number,
       trim(column_name) AS column_name,
       trim(column_type) AS column_type,
       error_code,
       trim(error_message) AS error_message,
       CAST(NULL AS VARCHAR(1)) AS raw_value
FROM sys_load_error_detail
WHERE query_id = %(query_id)s
ORDER BY line_number
LIMIT %(limit)s;
