-- Every file a run touched, for its steps and its one alert: runs for one file_id and batches alike.
SELECT file_id, file_type, bucket, s3_key, size_bytes, last_modified, etag, status, dag_id, run_id,
       loaded_at, rows_loaded, rows_rejected, copy_query_id, first_error, staged_from,
       error_report_key, archive_key, quarantine_key, attempts, error_message, registered_at, claimed_at
FROM {{ register }}
WHERE run_id = %(run_id)s
  AND file_id IN %(file_ids)s
ORDER BY last_modified, registered_at, file_id;
