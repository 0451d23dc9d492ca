"""``RedshiftLocal``: the listening side of the stand-in (one thread per client)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

import psycopg2.extensions

from redshift_local import compat
from redshift_local.catalog import Bootstrapper
from redshift_local.session import ClientSession

log = logging.getLogger(__name__)


def backend_address(dsn: str) -> tuple[int, str | tuple[str, int]]:
    """``(address family, address)`` of the PostgreSQL server a libpq DSN/URI names.

    A host starting with ``/`` is a Unix-socket directory (socket ``.s.PGSQL.<port>``); no host means
    the usual socket directories. Raises ``ValueError`` if no server address can be derived.
    """
    params = psycopg2.extensions.parse_dsn(dsn)
    host = (params.get("host") or "").split(",")[0]
    port = int((params.get("port") or "5432").split(",")[0])
    if not host:
        for directory in ("/var/run/postgresql", "/tmp"):  # noqa: S108 - libpq's default socket dirs
            if os.path.exists(f"{directory}/.s.PGSQL.{port}"):
                host = directory
                break
        else:
            host = "localhost"
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (host, port)


class RedshiftLocal:
    """A local Amazon Redshift stand-in: a PostgreSQL-protocol proxy in front of a real PostgreSQL.

    ``RedshiftLocal(postgres_dsn, host, port).start()`` binds at once (``.port`` is then known,
    ``port=0`` picks a free one) and serves clients in background threads; ``.dsn()`` gives the libpq
    URI to connect through it; ``.stop()`` closes everything. ``s3_endpoint_url`` defaults to
    ``$AWS_ENDPOINT_URL`` read at each COPY. Client sessions run at ``isolation`` (default
    ``$REDSHIFT_LOCAL_ISOLATION``, else read committed; Redshift's is serializable: see ``compat``).
    """

    def __init__(
        self,
        postgres_dsn: str,
        host: str = "127.0.0.1",
        port: int = 0,
        s3_endpoint_url: str | None = None,
        isolation: str | None = None,
    ) -> None:
        self.postgres_dsn = postgres_dsn
        self.isolation = isolation or compat.isolation_from_env()
        if self.isolation not in compat.ISOLATION_LEVELS:
            raise ValueError(f"isolation must be one of {', '.join(compat.ISOLATION_LEVELS)}")
        self.host = host
        self.port = port
        self.s3_endpoint_url = s3_endpoint_url
        self.bootstrapper = Bootstrapper(postgres_dsn)
        self._family, self._address = backend_address(postgres_dsn)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._sessions: set[ClientSession] = set()
        self._lock = threading.Lock()

    def open_backend(self) -> socket.socket:
        """A new socket connected to the PostgreSQL server. Raises ``OSError`` if it is unreachable."""
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            sock.connect(self._address)
        except OSError:
            sock.close()
            raise
        return sock

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """libpq URI that connects through the stand-in."""
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def start(self) -> RedshiftLocal:
        """Create the stand-in's objects in the DSN's database, bind, and serve in a background thread."""
        self.bootstrapper.ensure(psycopg2.extensions.parse_dsn(self.postgres_dsn).get("dbname"))
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, name=f"redshift-local-{self.port}", daemon=True)
        self._thread.start()
        log.info("Redshift stand-in listening on %s:%s", self.host, self.port)
        return self

    def _serve(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, peer = self._listener.accept()
            except OSError:
                return  # listener closed by stop()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = ClientSession(self, client, peer)
            with self._lock:
                self._sessions.add(session)
            threading.Thread(
                target=self._run_session, args=(session,), name=f"redshift-local-client-{peer}", daemon=True
            ).start()

    def _run_session(self, session: ClientSession) -> None:
        try:
            session.run()
        finally:
            with self._lock:
                self._sessions.discard(session)

    def serve_forever(self) -> None:
        """Block until the listener is closed (for the command-line entry point)."""
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> None:
        """Stop listening and close every client connection."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.client.close()
            if session.backend is not None:
                session.backend.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("Redshift stand-in on port %s stopped", self.port)

    def __enter__(self) -> RedshiftLocal:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
