"""Health checks of the stand-in containers (docker-compose.yaml), without curl in the image.

``python /app/healthcheck.py tcp PORT`` succeeds when 127.0.0.1:PORT accepts a connection;
``python /app/healthcheck.py http http://127.0.0.1:PORT/PATH`` when it answers 2xx. Exit status 0 or 1.
Arguments carry no spaces on purpose: podman's Docker-compatible API re-splits a check's command on spaces.
"""

from __future__ import annotations

import socket
import sys
import urllib.request


def main(argv: list[str]) -> int:
    kind, target = argv
    try:
        if kind == "tcp":
            socket.create_connection(("127.0.0.1", int(target)), timeout=2).close()
        elif kind == "http" and target.startswith("http://127.0.0.1:"):
            with urllib.request.urlopen(target, timeout=2):  # noqa: S310 - a local http:// URL, checked above
                pass
        else:
            raise SystemExit(f"unknown check {kind} {target}: tcp PORT or http http://127.0.0.1:PORT/PATH")
    except OSError as exc:
        print(f"{kind} {target}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
