"""The compose stack's mail and Slack receivers, each with a small HTTP API to read what arrived.

``python receivers.py mail --port 1025 --api-port 8025`` accepts every message on SMTP (the
``smtp_default`` connection points here) with ``devstack.services.SmtpSink``;
``python receivers.py slack --port 8090 --api-port 8091`` accepts Slack incoming-webhook POSTs (the
``slack_alerts`` connection) with ``devstack.services.SlackReceiver``. Both serve on ``--api-port``:

- ``GET /readyz``: ``ok`` (the health check);
- ``GET /api/v1/messages``: ``{"total": n, "messages": [...]}``, oldest first, everything received
  since the start (mail: ``{"from", "to", "subject", "text", "html"}``; Slack: the JSON payloads).

A few lines instead of an image like Mailpit: they run where no image registry is reachable.
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

from devstack.services import SlackReceiver, SmtpSink

RECEIVERS = {"mail": SmtpSink, "slack": SlackReceiver}


def serve(kind: str, host: str, port: int, api_port: int, stopped: threading.Event) -> None:
    """Run the ``kind`` receiver on ``port`` and the reading API on ``api_port`` until ``stopped``."""
    spool = Path(tempfile.mkdtemp(prefix=f"{kind}-receiver-")) / "received.jsonl"
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
            logging.debug(f"{kind} receiver api: " + fmt, *args)

    with RECEIVERS[kind](port=port, host=host, spool=spool):
        httpd = ThreadingHTTPServer((host, api_port), _Handler)
        threading.Thread(target=httpd.serve_forever, name=f"{kind}-api", daemon=True).start()
        logging.info("%s receiver on %s:%d; what arrived: GET :%d/api/v1/messages", kind, host, port, api_port)
        stopped.wait()
        httpd.shutdown()
        httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=sorted(RECEIVERS))
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    parser.add_argument("--port", type=int, required=True, help="SMTP port (mail) or webhook port (slack)")
    parser.add_argument("--api-port", type=int, required=True, help="port of GET /api/v1/messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    serve(args.kind, args.host, args.port, args.api_port, stopped)


if __name__ == "__main__":
    main()
