-- (Chosen by settings.load_errors_source = stl_load_errors: provisioned clusters.)
-- Lines scanned per file by one COPY (provisioned clusters; AWS "STL_LOAD_COMMITS": one row per file,
-- or per split of a file, with lines_scanned). Rows loaded per file = these less its rejected rows.
SELECT trim(filename) AS file_name, sum(lines_scanned) AS lines_scanned
FROM stl_load_commits
WHERE query = %(query_id)s
GROUP BY trim(filename);
