-- Rows a COPY rejected, from STL_LOAD_ERRORS (provisioned clusters; AWS "STL_LOAD_ERRORS").
-- Character columns are CHAR(n) there: trimmed.
SELECT trim(filename) AS file_name,
       line_number,
       trim(colname) AS column_name,
       trim(type) AS column_type,
       err_code AS error_code,
       trim(err_reason) AS error_message,
       trim(raw_field_value) AS raw_value
FROM stl_load_errors
WHERE query = %(query_id)s
ORDER BY line_number
LIMIT %(limit)s;
