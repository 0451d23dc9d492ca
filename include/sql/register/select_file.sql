SELECT file_id, file_type, bucket, s3_key, size_bytes, last_modified, etag, status, dag_id, run_id,
       loaded_at, rows_loaded, rows_rejected, copy_query_id, first_error, staged_from,
       error_report_key, archive_key, quarantine_key, attempts, error_message, registered_at,
       claimed_at, lease_expires_at, finished_at
FROM {{ register }}
WHERE file_id = %(file_id)s;
