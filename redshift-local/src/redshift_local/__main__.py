"""Command line: ``python -m redshift_local --port 5439 --postgres-dsn postgresql://...``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from redshift_local import compat
from redshift_local.server import RedshiftLocal


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the stand-in, serve until SIGINT/SIGTERM. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m redshift_local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5439, help="TCP port (default 5439, like Redshift)")
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get("REDSHIFT_LOCAL_POSTGRES_DSN"),
        help="libpq DSN/URI of the backing PostgreSQL (default $REDSHIFT_LOCAL_POSTGRES_DSN)",
    )
    parser.add_argument(
        "--s3-endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="S3 endpoint for COPY (default $AWS_ENDPOINT_URL; unset means AWS)",
    )
    parser.add_argument(
        "--isolation",
        choices=compat.ISOLATION_LEVELS,
        default=os.environ.get("REDSHIFT_LOCAL_ISOLATION", compat.DEFAULT_ISOLATION).lower(),
        help="isolation level of client sessions (default $REDSHIFT_LOCAL_ISOLATION, else read committed;"
        " Redshift's is serializable)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.postgres_dsn:
        parser.error("--postgres-dsn or REDSHIFT_LOCAL_POSTGRES_DSN is required")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = RedshiftLocal(
        args.postgres_dsn,
        host=args.host,
        port=args.port,
        s3_endpoint_url=args.s3_endpoint_url,
        isolation=args.isolation,
    )
    server.start()
    print(f"redshift_local listening on {args.host}:{server.port}", flush=True)

    def _stop(signum, frame):
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
