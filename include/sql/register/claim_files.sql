-- A batch claim: NEW -> IN_PROGRESS for this run, every file of the batch in one statement, under
-- the register's LOCK. Guarded: a file another run took in the meantime is not taken.
UPDATE {{ register }}
SET status = 'IN_PROGRESS',
    claimed_at = getdate(),
    dag_id = %(dag_id)s,
    run_id = %(run_id)s,
    lease_expires_at = %(lease_expires_at)s,
    attempts = attempts + 1,
    error_message = NULL,
    first_error = CASE WHEN loaded_at IS NULL THEN NULL ELSE first_error END,
    finished_at = NULL
WHERE file_id IN %(file_ids)s
  AND file_type = %(file_type)s
  AND status = 'NEW';
