"""The shipped least-privilege users (``include/sql/grants/least_privilege.sql``), created in the
tests' PostgreSQL through the Redshift stand-in, then used: the Lambda registers, a DAG claims,
COPYs (staging table, file-scoped delete, LOCK of the target) and moves the file through the
register, each connected as its own user with exactly those grants. And TLS: ``verify-full`` reaches
libpq (the stand-in speaks no TLS, so a verifying connection must fail rather than fall back)."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path

import boto3
import certifi
import psycopg2
import pytest

from devstack.demo import load_lambda_handler, s3_notification
from redshift_ingest import register
from redshift_ingest.config import FileType, Settings, default_file_types
from redshift_ingest.grants import apply_grants, grant_statements
from redshift_ingest.hooks.warehouse import WarehouseHook
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator
from redshift_ingest.register import S3Object
from redshift_ingest.registration import ensure_register_if_missing
from redshift_ingest.tasks import ensure_target_table

BUCKET = "example-landing-bucket"
PASSWORD = "Local-0nly-passw0rd"
SUFFIX = uuid.uuid4().hex[:8]  # roles are cluster-wide: one set per test session
NAMES = {
    "register_user": f"register_file_{SUFFIX}",
    "dags_user": f"ingest_dags_{SUFFIX}",
    "register_group": f"ingest_register_{SUFFIX}",
    "dags_group": f"ingest_dags_group_{SUFFIX}",
}
WEATHER = b"date,precipitation,temp_max,temp_min,wind,weather\n2012-01-01,0.0,12.8,5.0,4.7,drizzle\n"


def weather_type() -> FileType:
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    target = {**base.target.model_dump(), "table": f"weather.granted_{SUFFIX}", "on_new_version": "replace"}
    return FileType.model_validate({**base.model_dump(), "target": target})


@pytest.fixture(scope="module")
def users(stack):
    """The users and groups, created by the superuser through the stand-in, as an admin would."""
    admin = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    settings = Settings(landing_bucket=BUCKET)
    register.ensure_register(admin, settings)
    with admin.cursor() as cur:
        cur.execute("SELECT current_database()")
        database = cur.fetchone()[0]
    admin.rollback()
    statements = grant_statements(settings, [weather_type()], database=database, **NAMES)
    apply_grants(admin, statements, register_password=PASSWORD, dags_password=PASSWORD)
    yield statements
    admin.close()


def connect_as(stack, user: str):
    conn = psycopg2.connect(stack.redshift.dsn(user=user), password=PASSWORD, application_name="grants-test")
    with conn.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == user
    conn.rollback()
    return conn


def refused_to_delete_the_register(conn, settings) -> None:
    """Least privilege: neither user may delete register rows (the history of every file)."""
    with pytest.raises(psycopg2.errors.InsufficientPrivilege), conn.cursor() as cur:
        cur.execute(f"DELETE FROM {settings.register_table.quoted}")
    conn.rollback()


def test_the_shipped_sql_is_what_was_run(users):
    assert users[0].startswith('CREATE GROUP "ingest_register_')
    assert any("IN GROUP" in s and "%(register_password)s" in s for s in users)
    assert not any(PASSWORD in s for s in users)  # passwords are bound, never in the text


def test_the_lambda_registers_with_its_grants_and_nothing_more(users, stack, landing, settings, monkeypatch):
    user = NAMES["register_user"]
    secrets = boto3.client("secretsmanager")
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=f"grants/{user}", SecretString=json.dumps({"password": PASSWORD}))
    for key, value in {
        **stack.registration_env(),
        "REDSHIFT_USER": user,
        "REDSHIFT_SECRET_ARN": f"grants/{user}",
    }.items():
        monkeypatch.setenv(key, value)
    landing.put_object(Bucket=BUCKET, Key="landing/weather/granted.csv", Body=WEATHER)
    head = landing.head_object(Bucket=BUCKET, Key="landing/weather/granted.csv")
    obj = {"Key": "landing/weather/granted.csv", "Size": head["ContentLength"], "ETag": head["ETag"].strip('"'),
           "LastModified": head["LastModified"].isoformat().replace("+00:00", "Z")}  # fmt: skip
    answer = load_lambda_handler().handler(s3_notification(BUCKET, obj), None)  # cold start included
    assert answer["registered"] == 1

    conn = connect_as(stack, user)
    try:
        assert ensure_register_if_missing(conn, settings) is False
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):  # the register's DDL is not the Lambda's
            register.ensure_register(conn, settings)
        conn.rollback()
        refused_to_delete_the_register(conn, settings)
    finally:
        conn.close()


def test_a_dag_claims_copies_and_finishes_with_its_grants(users, stack, landing, settings, monkeypatch):
    user = NAMES["dags_user"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDSHIFT_DAGS",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": stack.redshift.port, "login": user,
                    "password": PASSWORD, "schema": "postgres",
                    "extra": {"iam_role_arn": "arn:aws:iam::123456789012:role/local-copy"}}),
    )  # fmt: skip
    dag_settings = Settings.model_validate({**settings.model_dump(), "warehouse_conn_id": "redshift_dags"})
    ft = weather_type()
    conn = WarehouseHook(warehouse_conn_id="redshift_dags").get_conn()
    try:
        for version, body in enumerate((WEATHER, WEATHER + b"2012-01-02,10.9,10.6,2.8,4.5,rain\n")):
            key = "landing/weather/dag-granted.csv"
            landing.put_object(Bucket=BUCKET, Key=key, Body=body)
            head = landing.head_object(Bucket=BUCKET, Key=key)
            obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
            assert register.register_object(conn, dag_settings, obj, ft.name, "test")  # reconcile's path
            run_id = f"manual__{version}"
            claimed = register.claim_file(
                conn, dag_settings, file_type=ft.name, selection="all", dag_id=ft.dag_id, run_id=run_id
            )
            assert claimed is not None and claimed.file_id == obj.file_id
            ensure_target_table(ft, dag_settings)
            op = CopyIntoTargetOperator(
                task_id="copy_into_target", file_type=ft, claimed_file=claimed.to_xcom(), settings=dag_settings
            )
            result = op.execute({"run_id": run_id})
            assert result["rows_loaded"] == version + 1
            register.record_archive(conn, dag_settings, obj.file_id, "archive/" + key)
            assert register.mark_done(conn, dag_settings, obj.file_id) == register.DONE
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {ft.target.table.quoted}")
            assert cur.fetchone()[0] == 2  # the new version replaced the first one's row
            cur.execute(f"SELECT count(*) FROM {settings.register_table.quoted} WHERE status = 'REPLACED'")
            assert cur.fetchone()[0] == 1
        conn.rollback()
        refused_to_delete_the_register(conn, settings)
    finally:
        conn.close()


def test_verify_full_reaches_libpq_and_never_falls_back_to_plaintext(stack, monkeypatch, tmp_path):
    extra = {"sslmode": "verify-full"}
    conn_json = {"conn_type": "postgres", "host": "127.0.0.1", "port": stack.redshift.port, "login": "postgres",
                 "schema": "postgres"}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT_TLS", json.dumps({**conn_json, "extra": extra}))
    with pytest.raises(psycopg2.OperationalError, match="SSL"):  # certifi's bundle; the stand-in has no TLS
        WarehouseHook(warehouse_conn_id="redshift_tls").get_conn()
    bundle = tmp_path / "redshift-ca-bundle.crt"
    bundle.write_bytes(Path(certifi.where()).read_bytes())  # a CA file of one's own
    monkeypatch.setenv(
        "AIRFLOW_CONN_REDSHIFT_TLS", json.dumps({**conn_json, "extra": {**extra, "sslrootcert": str(bundle)}})
    )
    with pytest.raises(psycopg2.OperationalError, match="SSL"):
        WarehouseHook(warehouse_conn_id="redshift_tls").get_conn()
    missing = {**extra, "sslrootcert": str(tmp_path / "nope.crt")}
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT_TLS", json.dumps({**conn_json, "extra": missing}))
    with pytest.raises(ValueError, match=r"nope\.crt' is not a readable file"):
        WarehouseHook(warehouse_conn_id="redshift_tls").get_conn()
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT_TLS", json.dumps({**conn_json, "extra": {"sslmode": "disable"}}))
    WarehouseHook(warehouse_conn_id="redshift_tls").get_conn().close()  # the same connection without TLS works
