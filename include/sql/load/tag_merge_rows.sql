-- load_mode merge: the rows the file's COPY just added to the staging table get the file's place in
-- the batch (and its file_id, when the target has that column).
UPDATE {{ staging }}
SET {{ seq }} = %(seq)s{% if lineage %}, {{ lineage }} = %(file_id)s{% endif %}
WHERE {{ seq }} IS NULL;
