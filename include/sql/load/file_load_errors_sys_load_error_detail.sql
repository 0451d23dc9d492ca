-- The first %(limit)s rejected rows of each file of one COPY, in line order (SYS_LOAD_ERROR_DETAIL,
-- which has no raw field value).
SELECT file_name, line_number, column_name, column_type, error_code, error_message, raw_value
FROM (
    SELECT trim(file_name) AS file_name,
           line_number,
           trim(column_name) AS column_name,
           trim(column_type) AS column_type,
           error_code,
           trim(error_message) AS error_message,
           CAST(NULL AS VARCHAR(1)) AS raw_value,
           row_number() OVER (PARTITION BY trim(file_name) ORDER BY line_number) AS n
    FROM sys_load_error_detail
    WHERE query_id = %(query_id)s
) AS errors
WHERE n <= %(limit)s
ORDER BY file_name, line_number;
