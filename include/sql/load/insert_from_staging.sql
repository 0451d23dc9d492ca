-- Staging table -> target: every column the files load, and the file_id column when the target has one.
INSERT INTO {{ target }} ({{ columns }})
SELECT {{ columns }} FROM {{ staging }};
