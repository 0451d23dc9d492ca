-- The rows the file's COPY just added to the staging table get its file_id.
UPDATE {{ staging }} SET {{ lineage }} = %(file_id)s WHERE {{ lineage }} IS NULL;
