-- load_mode merge: one row per key from the staging table: the greatest dedupe_by (when set), then
-- the latest file of the batch (AWS "Use a staging table to perform a merge (upsert)").
DROP TABLE IF EXISTS {{ winners }};
CREATE TEMP TABLE {{ winners }} AS
SELECT {{ columns }}
FROM (
    SELECT {{ columns }},
           ROW_NUMBER() OVER (
               {% include 'load/merge_newest_first.sqlpart' %}
           ) AS newest
    FROM {{ staging }}
) AS ranked
WHERE newest = 1;
