-- Whether the register table exists (least-privilege users look it up; an admin creates it).
SELECT 1
FROM pg_tables
WHERE schemaname = %(schema)s AND tablename = %(table)s
