-- One file of the File register view, every column (SELECT *: new columns show up as they come).
SELECT *
FROM {{ register }}
WHERE file_id = %(file_id)s;
