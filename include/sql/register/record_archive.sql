UPDATE {{ register }}
SET archive_key = %(archive_key)s
WHERE file_id = %(file_id)s AND status = 'IN_PROGRESS';
