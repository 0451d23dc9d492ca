"""Local services started without root: PostgreSQL, an S3 API, an SMTP sink and a Slack webhook receiver.

Each service is a small class with ``start()`` / ``stop()`` (and context-manager use) that records
what it received, so tests and the demo can assert on real traffic rather than on mocks. PostgreSQL
and the S3 API come from the stand-in's package (``redshift_local.embedded``), which stands on them too.
"""

from __future__ import annotations

import json
import logging
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redshift_local.embedded import Postgres, S3Server, Service, free_port

__all__ = ["Postgres", "S3Server", "Service", "SlackReceiver", "SmtpSink", "free_port"]

log = logging.getLogger(__name__)


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
