"""AWS Lambda ``register_file``: record each new S3 object in the register (``mng``).

Trigger: S3 event notifications or an EventBridge rule on ``Object Created`` (both shapes handled,
and SQS batches of S3 notifications). Environment: ``REDSHIFT_HOST``, ``REDSHIFT_PORT``,
``REDSHIFT_DATABASE``, ``REDSHIFT_USER`` and ``REDSHIFT_SECRET_ARN`` (Secrets Manager) or
``REDSHIFT_PASSWORD_PARAMETER`` (SSM SecureString). The package carries ``redshift_ingest`` and
``include/config`` (see ``package.py``), so the Lambda matches keys with the same file types as the
DAGs. Idempotent: a duplicate event registers nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from redshift_ingest import register
from redshift_ingest.config import default_file_types, default_settings
from redshift_ingest.registration import connect_from_environment, objects_from_event, register_objects

log = logging.getLogger()
log.setLevel(logging.INFO)

_connection = None  # reused across invocations of a warm Lambda


def _warehouse():
    global _connection
    if _connection is None or _connection.closed:
        _connection = connect_from_environment()
        register.ensure_register(_connection, default_settings())
    return _connection


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Register the objects ``event`` announces.

    :returns: ``{"registered": n, "duplicates": n, "unmatched": n, "files": [{file_id, url, file_type,
        outcome}]}``.
    :raises EventError: the event is of no known shape (the invocation fails: the event goes to the
        dead-letter queue, nothing is lost).
    """
    objects = objects_from_event(event)
    conn = _warehouse()
    try:
        results = register_objects(conn, default_settings(), default_file_types(), objects, registered_by="lambda")
    except Exception:
        # A broken connection must not be reused by the next invocation.
        conn.close()
        raise
    return {
        "registered": sum(r.outcome == "registered" for r in results),
        "duplicates": sum(r.outcome == "duplicate" for r in results),
        "unmatched": sum(r.outcome == "unmatched" for r in results),
        "files": [r.__dict__ for r in results],
    }
