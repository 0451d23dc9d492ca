-- Rows earlier loads of these very files left (a forced reload, a retry): normally none.
DELETE FROM {{ target }} WHERE {{ lineage }} IN %(file_ids)s;
