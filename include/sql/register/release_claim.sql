-- An expired claim goes back to NEW for the next run (history kept). A file whose COPY had
-- committed keeps loaded_at and its counts, so the next run skips the COPY and only archives it.
UPDATE {{ register }}
SET status = 'NEW',
    history = coalesce(history || chr(10), '') || 'attempt ' || CAST(attempts AS VARCHAR(10))
              || ': claim of run ' || coalesce(run_id, '?') || ' expired, released by the reaper',
    claimed_at = NULL,
    dag_id = NULL,
    run_id = NULL,
    lease_expires_at = NULL
WHERE file_id = %(file_id)s
  AND status = 'IN_PROGRESS'
  AND lease_expires_at < %(now)s;
