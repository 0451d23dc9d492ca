INSERT INTO batch_results (file_id, copy_query_id, rows_loaded, rows_rejected, first_error, error_report_key)
VALUES %s
