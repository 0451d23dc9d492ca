-- The sensor's question: is there a file of my type to load? (first cell truthy = yes)
-- A run triggered with a file_id in its conf does not wait: claim_file takes that file, or fails saying
-- why it cannot (unknown, another file type, in a state that cannot be rerun).
SELECT CASE
           WHEN %(file_id)s <> '' THEN 1
           ELSE (SELECT count(*) FROM {{ register }} WHERE file_type = %(file_type)s AND status = 'NEW')
       END;
