"""AWS Lambda ``register_file``: record each new S3 object in the register (``mng``).

Triggers: an EventBridge rule on ``Object Created`` (the template's), S3 event notifications, SNS
notifications of either, or an SQS queue of any of these. Environment: ``REDSHIFT_HOST``,
``REDSHIFT_PORT``, ``REDSHIFT_DATABASE``, ``REDSHIFT_USER`` and ``REDSHIFT_SECRET_ARN`` (Secrets
Manager) or ``REDSHIFT_PASSWORD_PARAMETER`` (SSM SecureString); ``REDSHIFT_SSLMODE`` and
``REDSHIFT_SSLROOTCERT`` for TLS; ``LANDING_BUCKET`` and ``LANDING_PREFIX`` (events of other buckets
or prefixes are ignored). The package carries ``redshift_ingest`` and ``include/`` (see
``package.py``), so the Lambda matches keys with the same file types as the DAGs.

- Idempotent: a duplicate event registers nothing.
- One transaction per invocation, however many objects (an SQS batch of 10 messages of 100 records
  each is one ``INSERT``).
- SQS batches answer with a partial batch response (``batchItemFailures``; the event source mapping
  needs ``FunctionResponseTypes: [ReportBatchItemFailures]``): a message that is no S3 event fails
  alone, its neighbours are registered; when the warehouse is down every message of the batch fails,
  so SQS delivers them again (and finally to the queue's dead-letter queue).
- Other triggers (EventBridge, S3, SNS: asynchronous invocations) raise on any error, so Lambda
  retries them and then sends them to the dead-letter queue; ``reconcile_landing`` finds whatever
  was lost.
"""

from __future__ import annotations

import logging
from typing import Any

from redshift_ingest.config import default_file_types, default_settings
from redshift_ingest.registration import (
    EventError,
    connect_from_environment,
    ensure_register_if_missing,
    objects_from_event,
    register_landed,
    settings_from_environment,
)

log = logging.getLogger()
log.setLevel(logging.INFO)

_connection = None  # reused across invocations of a warm Lambda


def _warehouse(settings):
    global _connection
    if _connection is None or _connection.closed:
        _connection = connect_from_environment()
        ensure_register_if_missing(_connection, settings)  # the register's DDL needs more grants
    return _connection


def _register(settings, objects) -> list:
    """Register ``objects`` in one transaction; a failed connection is dropped, never reused."""
    conn = _warehouse(settings)
    try:
        return register_landed(conn, settings, default_file_types(), objects, registered_by="lambda")
    except Exception:
        conn.close()
        raise


def _summary(results: list) -> dict[str, Any]:
    return {
        "registered": sum(r.outcome == "registered" for r in results),
        "duplicates": sum(r.outcome == "duplicate" for r in results),
        "unmatched": sum(r.outcome == "unmatched" for r in results),
        "files": [r.__dict__ for r in results],
    }


def _is_sqs_batch(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def _sqs_batch(event: dict[str, Any], settings) -> dict[str, Any]:
    failures: list[str] = []
    objects = []
    parsed: list[str] = []
    for record in event["Records"]:
        message_id = record.get("messageId", "")
        try:
            found = objects_from_event({"Records": [record]})
        except EventError as err:  # a poison message fails alone: SQS retries it, then dead-letters it
            log.error("SQS message %r is not an S3 event: %s", message_id, err)
            failures.append(message_id)
            continue
        if found:  # a message with nothing to register (a test event) succeeds whatever happens next
            objects.extend(found)
            parsed.append(message_id)
    if objects:
        try:
            results = _register(settings, objects)
        except Exception:
            log.exception(
                "Registering %d object(s) of %d message(s) failed: SQS retries them", len(objects), len(parsed)
            )
            failures.extend(parsed)
        else:
            log.info("Registered %s", {k: v for k, v in _summary(results).items() if k != "files"})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Register the objects ``event`` announces.

    :returns: for an SQS batch, the partial batch response ``{"batchItemFailures": [{"itemIdentifier":
        messageId}, ...]}`` (empty when all were registered); otherwise ``{"registered": n,
        "duplicates": n, "unmatched": n, "files": [{file_id, url, file_type, outcome}]}``.
    :raises EventError: a non-SQS event of no known shape (the invocation fails: Lambda retries it,
        then the event goes to the dead-letter queue; nothing is lost).
    :raises psycopg2.Error: the warehouse failed (a non-SQS event): retried the same way.
    """
    settings = settings_from_environment(default_settings())
    if _is_sqs_batch(event):
        return _sqs_batch(event, settings)
    objects = objects_from_event(event)
    return _summary(_register(settings, objects) if objects else [])
