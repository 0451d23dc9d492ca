SELECT count(*) FROM sys_load_error_detail WHERE query_id = %(query_id)s;
