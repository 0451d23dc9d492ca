-- Does the target's schema exist? (CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
-- it does, which a least-privilege DAG user lacks.)
SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s;
