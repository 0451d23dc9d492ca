-- Which of these object versions the register already has (a batch registration inserts the rest).
SELECT file_id FROM {{ register }} WHERE file_id IN %(ids)s;
