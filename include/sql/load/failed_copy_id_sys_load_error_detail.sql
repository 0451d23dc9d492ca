SELECT max(query_id) FROM sys_load_error_detail WHERE session_id = pg_backend_pid();
