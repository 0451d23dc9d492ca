-- latest selection: older NEW files of the type are FILTERED_OUT, pointing at the file that won.
UPDATE {{ register }}
SET status = 'FILTERED_OUT',
    superseded_by = %(file_id)s,
    finished_at = getdate()
WHERE file_type = %(file_type)s
  AND status = 'NEW'
  AND file_id <> %(file_id)s;
