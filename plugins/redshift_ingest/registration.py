"""Registration: turn S3 "object created" notices into register rows.

Three ways in, one code path (:func:`register_landed`, which registers a whole batch in one
transaction with :func:`register_objects`):

- the AWS Lambda ``register_file`` (``lambdas/register_file/handler.py``) with a real S3 event,
  either shape: S3 event notifications (``Records[].s3``; keys URL-encoded, AWS "Event message
  structure") or EventBridge ``Object Created`` (``detail.object``; keys as stored), delivered
  directly, through SNS (``Records[].Sns.Message``) or SQS (``Records[].body``, also holding an SNS
  envelope); ``s3:TestEvent`` messages are skipped;
- this module as a command: ``python -m redshift_ingest.registration s3://bucket/key ...`` or
  ``--event-file event.json``;
- reconcile: ``--reconcile`` lists the landing prefix and registers what the events missed
  (S3 delivers events at least once and a failed Lambda can lose them).

A key that matches no file type is registered as ``UNMATCHED``, never dropped. Objects of another
bucket than ``landing_bucket``, or outside ``landing_prefix``, are ignored (logged). Both come from
``settings.yaml``, overridden by the environment variables ``LANDING_BUCKET`` and ``LANDING_PREFIX``
(the Lambda template sets them). Keys are user input: logged with ``repr`` (a line feed in a key
cannot split or forge a log line).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus, urlparse

from redshift_ingest import register
from redshift_ingest.config import FileType, Settings, match_file_type
from redshift_ingest.register import S3Object
from redshift_ingest.sql import render_register
from redshift_ingest.tls import ssl_options

log = logging.getLogger(__name__)


class EventError(ValueError):
    """The event is not an S3 object-created event of a known shape."""


@dataclass(frozen=True)
class Registration:
    """The outcome for one object: ``registered``, ``duplicate`` (already there) or ``unmatched``."""

    file_id: str
    url: str
    file_type: str | None
    outcome: str


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def _json(text: Any, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else text
    except json.JSONDecodeError as err:
        raise EventError(f"{what} is not JSON: {err}") from None
    if not isinstance(value, dict):
        raise EventError(f"{what} is not a JSON object but {type(value).__name__}")
    return value


def _is_test_event(event: dict[str, Any]) -> bool:
    # S3 sends {"Service": "Amazon S3", "Event": "s3:TestEvent", ...} when a destination is set up.
    return event.get("Event") == "s3:TestEvent"


def _s3_record(record: dict[str, Any]) -> S3Object:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        return S3Object(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),
            size_bytes=obj.get("size"),
            etag=obj.get("eTag"),
            version_id=obj.get("versionId"),
            last_modified=_parse_time(record.get("eventTime")),
        )
    except (KeyError, TypeError) as err:
        raise EventError(f"S3 event record without {err}: not an S3 event notification") from None


def objects_from_event(event: dict[str, Any]) -> list[S3Object]:
    """The S3 objects an event announces.

    :param event: an S3 event notification, an EventBridge ``Object Created`` event, an SNS
        notification of either (``Records[].Sns``, or an SNS envelope ``{"Type": "Notification",
        "Message": ...}`` as SQS receives it), or an SQS event whose bodies are any of these.
    :returns: one :class:`S3Object` per created object (other kinds of events and ``s3:TestEvent``
        are skipped, logged).
    :raises EventError: the event, or a message inside it, has none of these shapes.
    """
    if _is_test_event(event):
        log.info("Skipping S3 test event for bucket %r", event.get("Bucket"))
        return []
    if event.get("Type") == "Notification" and "Message" in event:  # an SNS envelope in an SQS body
        return objects_from_event(_json(event["Message"], "SNS message"))
    if event.get("source") == "aws.s3" and "detail" in event:
        if event.get("detail-type") != "Object Created":
            log.info("Skipping EventBridge event %r", event.get("detail-type"))
            return []
        try:
            detail = event["detail"]
            obj = detail["object"]
            return [
                S3Object(
                    bucket=detail["bucket"]["name"],
                    key=obj["key"],
                    size_bytes=obj.get("size"),
                    etag=obj.get("etag"),
                    version_id=obj.get("version-id"),
                    last_modified=_parse_time(event.get("time")),
                )
            ]
        except (KeyError, TypeError) as err:
            raise EventError(f"EventBridge 'Object Created' event without {err}") from None
    if isinstance(event.get("Records"), list):
        found: list[S3Object] = []
        for record in event["Records"]:
            if not isinstance(record, dict):
                raise EventError(f"event record is not a JSON object but {type(record).__name__}")
            if "Sns" in record:  # SNS -> Lambda
                found.extend(objects_from_event(_json((record["Sns"] or {}).get("Message"), "SNS message")))
            elif "body" in record and "s3" not in record:  # SQS message
                found.extend(objects_from_event(_json(record["body"], "SQS message body")))
            elif not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                log.info("Skipping S3 event %r", record.get("eventName"))
            else:
                found.append(_s3_record(record))
        return found
    raise EventError(
        "not an S3 event notification, an EventBridge 'Object Created' event, or an SNS or SQS message of them"
    )


@dataclass(frozen=True)
class Landed:
    """One object version to register: its file type (None: ``UNMATCHED``) and who registers it."""

    obj: S3Object
    file_type: str | None
    registered_by: str


def register_objects(conn, settings: Settings, items: Sequence[Landed]) -> set[str]:
    """Register ``items`` in one transaction: one ``INSERT ... SELECT ... WHERE NOT EXISTS`` for all
    of them under ``LOCK`` on the register, then one ``UPDATE`` that filters out the earlier
    versions, still ``NEW``, of the keys registered (COPY can only read a key's current object).
    Commits; rolls back and raises on any error (nothing of the batch is registered then).

    :param items: object versions; repeats of one version (a duplicate event in the same batch) are
        registered once. Keys must be in ``settings.landing_bucket``-style buckets of at most 63
        characters and at most 1,024 bytes (S3's own limits).
    :returns: the ``file_id`` of each version inserted now (versions already registered are not).
    :raises psycopg2.Error: the warehouse failed; the caller retries the whole batch.
    """
    unique = list({item.obj.file_id: item for item in items}.values())
    if not unique:
        return set()
    # In microseconds and in event order (GETDATE() has whole seconds): it orders versions of a key
    # uploaded in the same second (S3 last-modified has whole seconds too).
    start = datetime.now(UTC).replace(tzinfo=None)
    params: dict[str, Any] = {}
    for i, item in enumerate(unique):
        obj = item.obj
        params.update(
            {
                f"file_id_{i}": obj.file_id,
                f"file_type_{i}": item.file_type,
                f"bucket_{i}": obj.bucket,
                f"s3_key_{i}": obj.key,
                f"version_id_{i}": obj.version_id,
                f"etag_{i}": (obj.etag or "").strip('"') or None,
                f"size_bytes_{i}": obj.size_bytes,
                f"last_modified_{i}": obj.last_modified,
                f"status_{i}": register.NEW if item.file_type else register.UNMATCHED,
                f"registered_at_{i}": start + timedelta(microseconds=i),
                f"registered_by_{i}": item.registered_by,
            }
        )
    ids = tuple(params[f"file_id_{i}"] for i in range(len(unique)))
    try:
        with conn.cursor() as cur:
            register.lock_register(cur, settings)
            cur.execute(render_register("select_known_files.sql", settings), {"ids": ids})
            known = {row[0] for row in cur.fetchall()}
            cur.execute(render_register("insert_files.sql", settings, rows=range(len(unique))), params)
            inserted = set(ids) - known
            matched = [item.obj for item in unique if item.file_type and item.obj.file_id in inserted]
            for bucket in sorted({obj.bucket for obj in matched}):
                keys = tuple(sorted({obj.key for obj in matched if obj.bucket == bucket}))
                cur.execute(
                    render_register("supersede_versions_batch.sql", settings), {"bucket": bucket, "s3_keys": keys}
                )
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return inserted


def settings_from_environment(settings: Settings) -> Settings:
    """``settings`` with ``landing_bucket`` / ``landing_prefix`` from ``LANDING_BUCKET`` /
    ``LANDING_PREFIX`` when set (the Lambda template sets both from its parameters).

    :raises pydantic.ValidationError: a variable holds an invalid bucket name or prefix.
    """
    overrides = {
        field: os.environ[var]
        for field, var in (("landing_bucket", "LANDING_BUCKET"), ("landing_prefix", "LANDING_PREFIX"))
        if os.environ.get(var)
    }
    return Settings.model_validate({**settings.model_dump(), **overrides}) if overrides else settings


def register_landed(
    conn,
    settings: Settings,
    file_types: tuple[FileType, ...],
    objects: Iterable[S3Object],
    registered_by: str,
) -> list[Registration]:
    """Register each object under its file type (``UNMATCHED`` when none matches), all in one
    transaction (:func:`register_objects`); idempotent.

    Objects of another bucket than ``settings.landing_bucket``, or outside ``settings.landing_prefix``
    (archive, quarantine, staging, reports), are ignored, so the pipeline's own writes and other
    buckets' events never register as new files.

    :returns: one :class:`Registration` per object considered.
    :raises psycopg2.Error: the warehouse failed: nothing was registered (retry).
    """
    items: list[Landed] = []
    for obj in objects:
        if obj.bucket != settings.landing_bucket:
            log.warning(
                "Ignoring %r: bucket %r is not the landing bucket %r", obj.url, obj.bucket, settings.landing_bucket
            )
            continue
        if not obj.key.startswith(settings.landing_prefix) or obj.key.endswith("/"):
            log.info("Ignoring %r: not a file under the landing prefix %r", obj.url, settings.landing_prefix)
            continue
        file_type = match_file_type(obj.key, file_types)
        items.append(Landed(obj, file_type.name if file_type else None, registered_by))
    inserted = register_objects(conn, settings, items)
    results = []
    for item in items:
        name, obj = item.file_type, item.obj
        outcome = "unmatched" if name is None else ("registered" if obj.file_id in inserted else "duplicate")
        if name is None:
            log.warning("%r matches no file type: registered as UNMATCHED", obj.url)
        log.info("%r -> %s (%s, file_id %s)", obj.url, name, outcome, obj.file_id)
        results.append(Registration(obj.file_id, obj.url, name, outcome))
    return results


def head_object(s3_client, url: str) -> S3Object:
    """Describe ``s3://bucket/key`` from a HEAD request (size, ETag, version, last modified)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"expected s3://bucket/key, got {url!r}")
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    head = s3_client.head_object(Bucket=bucket, Key=key)
    return S3Object(
        bucket=bucket,
        key=key,
        size_bytes=head["ContentLength"],
        etag=head["ETag"].strip('"'),
        version_id=head.get("VersionId"),
        last_modified=head["LastModified"].astimezone(UTC).replace(tzinfo=None),
    )


def list_landing(s3_client, bucket: str, prefix: str) -> Iterator[S3Object]:
    """Every object under ``prefix`` (paginated ListObjectsV2), described like an event would."""
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield S3Object(
                bucket=bucket,
                key=item["Key"],
                size_bytes=item["Size"],
                etag=item["ETag"].strip('"'),
                last_modified=item["LastModified"].astimezone(UTC).replace(tzinfo=None),
            )


def reconcile(conn, settings: Settings, file_types: tuple[FileType, ...], s3_client) -> dict[str, Any]:
    """Register landed objects the events missed, and report register rows whose object vanished.

    Listing gives ETags but not version ids; on a versioned bucket an object first registered by an
    event (with its version id) would get another file_id here, so reconcile skips keys already in
    the register with the same ETag.

    :returns: ``{"registered": [...urls], "unmatched": [...], "vanished": [...urls]}``.
    """
    bucket = settings.landing_bucket
    landed = list(list_landing(s3_client, bucket, settings.landing_prefix))
    with conn.cursor() as cur:
        cur.execute(render_register("select_known_versions.sql", settings), {"bucket": bucket})
        known = {(key, etag): status for key, etag, status in cur.fetchall()}
    conn.rollback()
    missed = [o for o in landed if (o.key, o.etag) not in known]
    results = register_landed(conn, settings, file_types, missed, registered_by="reconcile")
    landed_keys = {o.key for o in landed}
    vanished = sorted(
        f"s3://{bucket}/{key}"
        for (key, _etag), status in known.items()
        if status in (register.NEW, register.IN_PROGRESS) and key not in landed_keys
    )
    for url in vanished:
        log.warning("%r is in the register but no longer in landing", url)
    return {
        "registered": [r.url for r in results if r.outcome == "registered"],
        "unmatched": [r.url for r in results if r.outcome == "unmatched"],
        "vanished": vanished,
    }


def connect_from_environment():
    """A psycopg2 connection from ``REDSHIFT_HOST/PORT/DATABASE/USER`` and a password fetched by name.

    TLS: ``REDSHIFT_SSLMODE`` (default ``verify-full``: encrypted, server certificate and host name
    checked) and ``REDSHIFT_SSLROOTCERT`` (the CA bundle; default ``certifi``'s, which holds the
    Amazon Root CAs: see :mod:`redshift_ingest.tls`).

    The password comes from Secrets Manager (``REDSHIFT_SECRET_ARN``: a secret whose JSON has
    ``password``, as Redshift's managed secrets do) or SSM Parameter Store
    (``REDSHIFT_PASSWORD_PARAMETER``, a SecureString), never from the environment itself.

    :raises KeyError: a required variable is missing (named in the message).
    """
    import boto3
    import psycopg2

    env = os.environ
    missing = [v for v in ("REDSHIFT_HOST", "REDSHIFT_DATABASE", "REDSHIFT_USER") if not env.get(v)]
    if missing:
        raise KeyError(f"missing environment variables: {', '.join(missing)}")
    if env.get("REDSHIFT_SECRET_ARN"):
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=env["REDSHIFT_SECRET_ARN"])
        password = json.loads(secret["SecretString"])["password"]
    elif env.get("REDSHIFT_PASSWORD_PARAMETER"):
        parameter = boto3.client("ssm").get_parameter(Name=env["REDSHIFT_PASSWORD_PARAMETER"], WithDecryption=True)
        password = parameter["Parameter"]["Value"]
    else:
        raise KeyError("set REDSHIFT_SECRET_ARN (Secrets Manager) or REDSHIFT_PASSWORD_PARAMETER (SSM)")
    return psycopg2.connect(
        host=env["REDSHIFT_HOST"],
        port=int(env.get("REDSHIFT_PORT", "5439")),
        dbname=env["REDSHIFT_DATABASE"],
        user=env["REDSHIFT_USER"],
        password=password,
        connect_timeout=10,
        application_name="register_file",
        **ssl_options(env.get("REDSHIFT_SSLMODE", "verify-full"), env.get("REDSHIFT_SSLROOTCERT")),
    )


def ensure_register_if_missing(conn, settings: Settings) -> bool:
    """Create the register (:func:`register.ensure_register`) only when it does not exist.

    Its DDL needs more than the least-privilege users have (``CREATE SCHEMA IF NOT EXISTS`` checks
    CREATE on the database even when the schema exists): an admin creates the register once
    (``include/sql/grants/least_privilege.sql``), and the users only look it up in ``pg_tables``.

    :returns: True when it was created now.
    """
    table = settings.register_table
    with conn.cursor() as cur:
        cur.execute(
            render_register("register_exists.sql", settings), {"schema": table.schema_name, "table": table.table}
        )
        exists = cur.fetchone() is not None
    conn.rollback()
    if not exists:
        register.ensure_register(conn, settings)
    return not exists


def main(argv: list[str] | None = None) -> int:
    """The command: register ``s3://`` URLs, an event file's objects, or reconcile the landing prefix."""
    import boto3

    from redshift_ingest.config import default_file_types, default_settings

    parser = argparse.ArgumentParser(prog="python -m redshift_ingest.registration", description=__doc__.split("\n")[0])
    parser.add_argument("urls", nargs="*", help="s3://bucket/key of objects to register")
    parser.add_argument("--event-file", action="append", default=[], help="a JSON file holding an S3 event")
    parser.add_argument("--reconcile", action="store_true", help="register what is in landing but not registered")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings, file_types = settings_from_environment(default_settings()), default_file_types()
    conn = connect_from_environment()
    try:
        ensure_register_if_missing(conn, settings)
        s3 = boto3.client("s3")
        if args.reconcile:
            print(json.dumps(reconcile(conn, settings, file_types, s3), indent=2))
        objects = [head_object(s3, url) for url in args.urls]
        for path in args.event_file:
            with open(path, encoding="utf-8") as handle:
                objects.extend(objects_from_event(json.load(handle)))
        for result in register_landed(conn, settings, file_types, objects, registered_by="cli"):
            print(f"{result.outcome:10} {result.file_type or '-':20} {result.url} {result.file_id}")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
