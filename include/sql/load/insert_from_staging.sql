-- Staging table -> target, every row with the file_id of the file it came from.
INSERT INTO {{ target }} ({{ columns }}, {{ lineage }})
SELECT {{ columns }}, {{ lineage }} FROM {{ staging }};
