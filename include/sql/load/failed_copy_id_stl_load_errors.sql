-- The query id of this session's latest COPY that recorded load errors (a failed COPY leaves no
-- pg_last_copy_id() to ask).
SELECT max(query) FROM stl_load_errors WHERE session = pg_backend_pid();
