-- The first %(limit)s rejected rows of each file of one COPY, in line order (STL_LOAD_ERRORS;
-- character columns are CHAR(n) there: trimmed).
SELECT file_name, line_number, column_name, column_type, error_code, error_message, raw_value
FROM (
    SELECT trim(filename) AS file_name,
           line_number,
           trim(colname) AS column_name,
           trim(type) AS column_type,
           err_code AS error_code,
           trim(err_reason) AS error_message,
           trim(raw_field_value) AS raw_value,
           row_number() OVER (PARTITION BY trim(filename) ORDER BY line_number) AS n
    FROM stl_load_errors
    WHERE query = %(query_id)s
) AS errors
WHERE n <= %(limit)s
ORDER BY file_name, line_number;
