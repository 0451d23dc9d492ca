-- In the batch COPY's own transaction: every file's rows loaded/rejected, query id and first error.
-- Guarded like record_load.sql: a file not claimed by this run, or already loaded, is not updated
-- (the caller compares the count and rolls the whole load back).
UPDATE {{ register }}
SET loaded_at = getdate(),
    copy_query_id = batch_results.copy_query_id,
    rows_loaded = batch_results.rows_loaded,
    rows_rejected = batch_results.rows_rejected,
    first_error = batch_results.first_error,
    error_report_key = batch_results.error_report_key
FROM batch_results
WHERE {{ register }}.file_id = batch_results.file_id
  AND {{ register }}.status = 'IN_PROGRESS'
  AND {{ register }}.run_id = %(run_id)s
  AND {{ register }}.loaded_at IS NULL;
