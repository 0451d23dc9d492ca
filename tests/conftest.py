"""Session-wide real services for the tests: PostgreSQL, moto's S3 server, the Redshift stand-in.

Nothing here is a mock: each fixture starts the real program (see ``devstack.services``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.services import Postgres, S3Server


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Iterator[Postgres]:
    """A real PostgreSQL server for the whole session (``.dsn`` is its libpq URI)."""
    with Postgres(tmp_path_factory.mktemp("pgdata")) as server:
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
