-- The sensor's question: is there a file of my type to load? (first cell truthy = yes)
SELECT count(*)
FROM {{ register }}
WHERE file_type = %(file_type)s
  AND (status = 'NEW' OR (%(file_id)s <> '' AND file_id = %(file_id)s AND status IN ('NEW', 'FAILED')));
