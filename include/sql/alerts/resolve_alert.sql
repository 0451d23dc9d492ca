-- Closes the open incident (rowcount 1: this caller sends the resolution message).
UPDATE {{ alerts }}
SET resolved_at = %(now)s
WHERE file_type = %(file_type)s AND kind = %(kind)s AND resolved_at IS NULL;
