"""Session-wide real services for the tests: PostgreSQL, moto's S3 server, the Redshift stand-in.

Nothing here is a mock: each fixture starts the real program (see ``devstack.services``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.services import Postgres, S3Server
from devstack.stack import EmbeddedStack, airflow_home_env, migrate_airflow_db
from redshift_local.embedded import temporary_postgres

# Test tiers. A test is a ``unit`` test (``make test-unit``) when it needs no service: none of these
# fixtures (each starts, or stands on, a real PostgreSQL, moto's S3 server, the Redshift stand-in or
# Airflow's metadata database), and it is not in a folder whose tests drive whole stacks themselves.
# (The stand-in's own tests are in redshift-local/tests, run from that folder.)
SERVICE_FIXTURES = frozenset({"postgres", "s3_server", "stack", "warehouse", "landing", "s3", "bucket"})
SERVICE_FOLDERS = ("e2e", "faults", "ui", "deploy")
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items) -> None:
    """Mark each test that needs no service (see ``SERVICE_FIXTURES``) as ``unit``; a test can also opt
    out with ``@pytest.mark.service`` (it starts a service itself: a subprocess Airflow, a venv)."""
    for item in items:
        folder = Path(item.fspath).resolve().relative_to(_TESTS).parts[0]
        needs_service = (
            folder in SERVICE_FOLDERS
            or item.get_closest_marker("service") is not None
            or not SERVICE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        )
        if not needs_service:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the whole session (``.dsn`` is its libpq URI).

    Its data lives outside pytest's shared temp root: every new pytest run of the same user
    re-permissions that root, and the server (its own system user when run as root) would then die,
    so two test runs on one machine would break each other.
    """
    with temporary_postgres(prefix="redshift-ingest-pgdata-") as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server; ``AWS_ENDPOINT_URL`` and dummy credentials are exported for boto3."""
    with S3Server() as server:
        saved = {key: os.environ.get(key) for key in server.env()}
        os.environ.update(server.env())
        yield server
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Airflow reads AIRFLOW_HOME and its config at import time: point it at a private home before any
# test module imports Airflow (the DAG and plugin tests do, at collection).
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.update(airflow_home_env(_AIRFLOW_HOME))


@pytest.fixture(scope="session")
def stack(tmp_path_factory, postgres, s3_server) -> Iterator[EmbeddedStack]:
    """The embedded stack (Redshift stand-in, S3, SMTP sink, Slack receiver) with Airflow's
    connections exported and its metadata database migrated: what ``make demo`` runs on.
    """
    with EmbeddedStack(tmp_path_factory.mktemp("stack"), postgres=postgres, s3=s3_server) as running:
        env = {**airflow_home_env(_AIRFLOW_HOME), **running.connections()}
        os.environ.update(env)
        migrate_airflow_db(env)
        yield running


@pytest.fixture(scope="session")
def settings():
    from redshift_ingest.config import default_settings

    return default_settings()


@pytest.fixture(scope="session")
def file_types():
    from redshift_ingest.config import default_file_types

    return default_file_types()


@pytest.fixture
def warehouse(stack) -> Iterator:
    """A psycopg2 connection to the stand-in, through the Airflow connection the DAGs use."""
    from redshift_ingest.hooks.warehouse import WarehouseHook

    conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    yield conn
    conn.close()


@pytest.fixture
def landing(stack, settings):
    """An empty register and an empty landing bucket (boto3 client returned)."""
    import boto3

    from redshift_ingest.hooks.warehouse import WarehouseHook
    from redshift_ingest.register import ensure_register

    s3 = boto3.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.landing_bucket in existing:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.landing_bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=settings.landing_bucket, Delete={"Objects": keys})
    else:
        s3.create_bucket(Bucket=settings.landing_bucket)
    conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    ensure_register(conn, settings)
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {settings.register_table.quoted}")
    conn.commit()
    conn.close()
    return s3


@pytest.fixture
def lambda_env(stack, monkeypatch):
    """The ``register_file`` Lambda's environment: where Redshift is, and the *name* of the secret
    holding the password (created in moto's Secrets Manager)."""
    import boto3

    secrets = boto3.client("secretsmanager")
    env = stack.registration_env()
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=env["REDSHIFT_SECRET_ARN"], SecretString=json.dumps({"password": "x"}))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
