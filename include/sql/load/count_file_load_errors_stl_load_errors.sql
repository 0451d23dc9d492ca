-- Rows rejected per file by one COPY (AWS "STL_LOAD_ERRORS": one row per rejected row, with filename).
SELECT trim(filename) AS file_name, count(*) AS rows_rejected
FROM stl_load_errors
WHERE query = %(query_id)s
GROUP BY trim(filename);
