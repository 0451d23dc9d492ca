"""The compose stack's mail receiver: an SMTP sink with a small HTTP API to read what arrived.

``python mail_receiver.py --smtp-port 1025 --http-port 8025`` accepts every message on SMTP (the
``smtp_default`` connection points here) with ``devstack.services.SmtpSink`` and serves:

- ``GET /readyz``: ``ok`` (the health check);
- ``GET /api/v1/messages``: ``{"total": n, "messages": [{"from", "to", "subject", "text", "html"}]}``,
  oldest first, every message received since the receiver started (kept in memory).

A few lines instead of an image like Mailpit: it runs where no image registry is reachable.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devstack.services import SmtpSink


def serve(host: str, smtp_port: int, http_port: int, stopped: threading.Event) -> None:
    """Run the SMTP sink and the HTTP API until ``stopped`` is set."""
    spool = Path(tempfile.mkdtemp(prefix="mail-receiver-")) / "messages.jsonl"
    spool.touch()

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/readyz":
                self._answer(200, "text/plain", b"ok")
            elif self.path.split("?")[0] == "/api/v1/messages":
                messages = [json.loads(line) for line in spool.read_text(encoding="utf-8").splitlines() if line]
                body = json.dumps({"total": len(messages), "messages": messages}).encode()
                self._answer(200, "application/json", body)
            else:
                self._answer(404, "text/plain", b"not found")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            logging.debug("mail receiver http: " + fmt, *args)

    with SmtpSink(port=smtp_port, host=host, spool=spool):
        httpd = ThreadingHTTPServer((host, http_port), _Handler)
        threading.Thread(target=httpd.serve_forever, name="mail-http", daemon=True).start()
        logging.info(
            "mail receiver: SMTP on %s:%d, messages at http://%s:%d/api/v1/messages", host, smtp_port, host, http_port
        )
        stopped.wait()
        httpd.shutdown()
        httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    serve(args.host, args.smtp_port, args.http_port, stopped)


if __name__ == "__main__":
    main()
