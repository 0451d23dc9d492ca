-- (column name, data type) of a table, in order, for its lineage schema facet (the query the Amazon
-- provider's get_facets_from_redshift_table runs, with bound values).
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s
ORDER BY ordinal_position;
