-- The rows one file loaded (found by the file_id column).
DELETE FROM {{ target }} WHERE {{ lineage }} = %(file_id)s;
