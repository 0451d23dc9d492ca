UPDATE {{ register }}
SET staged_from = %(staged_from)s
WHERE file_id = %(file_id)s AND status = 'IN_PROGRESS';
