-- Least-privilege database users of redshift_ingest: one for the register_file Lambda, one for the
-- DAGs (Airflow connection redshift_default). Run once as a superuser, after the register exists
-- (include/sql/register/create_register.sql, run by the same admin), on Redshift or the stand-in.
-- Render it with `python -m redshift_ingest.grants` (identifiers from settings.yaml and the file
-- types; passwords are bound values, never part of the text).
-- Groups, not roles: CREATE GROUP / GRANT ... TO GROUP is the same SQL on Redshift and PostgreSQL.
CREATE GROUP {{ register_group }};
CREATE GROUP {{ dags_group }};
CREATE USER {{ register_user }} PASSWORD %(register_password)s IN GROUP {{ register_group }};
CREATE USER {{ dags_user }} PASSWORD %(dags_password)s IN GROUP {{ dags_group }};

-- The register. Both users register objects (INSERT ... WHERE NOT EXISTS), read it, and change
-- states with guarded UPDATEs, all under LOCK: PostgreSQL (so the stand-in) lets a user LOCK a table
-- in ACCESS EXCLUSIVE mode only with UPDATE, DELETE or TRUNCATE on it; Redshift's LOCK documents no
-- privilege of its own. Neither user runs the register's DDL (the Lambda creates the register only
-- when it is missing: CREATE SCHEMA IF NOT EXISTS checks CREATE on the database even when the schema
-- exists).
GRANT USAGE ON SCHEMA {{ register_schema }} TO GROUP {{ register_group }}, GROUP {{ dags_group }};
GRANT SELECT, INSERT, UPDATE ON {{ register }} TO GROUP {{ register_group }};
GRANT SELECT, INSERT, UPDATE ON {{ register }} TO GROUP {{ dags_group }};

-- The DAGs' loads. TEMP: COPY goes into a temporary staging table LIKE the target. CREATE on the
-- database: ensure_target_table runs CREATE SCHEMA IF NOT EXISTS for each target (checked even when
-- the schema exists). Per target schema, created here: create the target tables (their DDL), and for
-- tables an admin created: INSERT (the load), DELETE (load_mode replace, file-scoped deletes of a
-- reload or a new version), UPDATE (what LOCK of the target needs on PostgreSQL), SELECT.
GRANT TEMP ON DATABASE {{ database }} TO GROUP {{ dags_group }};
GRANT CREATE ON DATABASE {{ database }} TO GROUP {{ dags_group }};
{%- for schema in target_schemas %}
CREATE SCHEMA IF NOT EXISTS {{ schema }};
GRANT USAGE, CREATE ON SCHEMA {{ schema }} TO GROUP {{ dags_group }};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{ schema }} TO GROUP {{ dags_group }};
{%- endfor %}
