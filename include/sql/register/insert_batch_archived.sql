INSERT INTO batch_archived (file_id, archive_key)
VALUES %s
