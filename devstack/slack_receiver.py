"""The local Slack webhook receiver as a process (docker-compose's ``slack-receiver`` service).

``python -m devstack.slack_receiver --host 0.0.0.0 --port 8090 [--spool slack.jsonl]`` accepts
incoming-webhook POSTs like Slack and logs (and spools) each payload.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from pathlib import Path

from devstack.services import SlackReceiver


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.slack_receiver", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--spool", type=Path, help="append each payload to this JSON-lines file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with SlackReceiver(port=args.port, host=args.host, spool=args.spool) as receiver:
        logging.info("Slack webhook receiver listening on %s", receiver.url)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()
