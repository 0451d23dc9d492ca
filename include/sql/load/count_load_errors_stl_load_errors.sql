SELECT count(*) FROM stl_load_errors WHERE query = %(query_id)s;
