"""Registration: turn S3 "object created" notices into register rows.

Three ways in, one code path (:func:`register_objects`):

- the AWS Lambda ``register_file`` (``lambdas/register_file/handler.py``) with a real S3 event,
  either shape: S3 event notifications (``Records[].s3``; keys URL-encoded, AWS "Event message
  structure") or EventBridge ``Object Created`` (``detail.object``; keys as stored). SQS-wrapped S3
  notifications (``Records[].body``) are unwrapped too;
- this module as a command: ``python -m redshift_ingest.registration s3://bucket/key ...`` or
  ``--event-file event.json``;
- reconcile: ``--reconcile`` lists the landing prefix and registers what the events missed
  (S3 delivers events at least once and a failed Lambda can lose them).

A key that matches no file type is registered as ``UNMATCHED``, never dropped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus, urlparse

from redshift_ingest import register
from redshift_ingest.config import FileType, Settings, match_file_type
from redshift_ingest.register import S3Object

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


def objects_from_event(event: dict[str, Any]) -> list[S3Object]:
    """The S3 objects an event announces.

    :param event: an S3 event notification, an EventBridge ``Object Created`` event, or an SQS event
        whose bodies are S3 notifications.
    :returns: one :class:`S3Object` per created object (events of other kinds are skipped, logged).
    :raises EventError: the event has neither shape.
    """
    if event.get("source") == "aws.s3" and "detail" in event:
        if event.get("detail-type") != "Object Created":
            log.info("Skipping EventBridge event %r", event.get("detail-type"))
            return []
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
    if isinstance(event.get("Records"), list):
        found: list[S3Object] = []
        for record in event["Records"]:
            if "body" in record and "s3" not in record:  # SQS message carrying an S3 notification
                body = json.loads(record["body"])
                if body.get("Event") == "s3:TestEvent":
                    continue
                found.extend(objects_from_event(body))
                continue
            if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                log.info("Skipping S3 event %r", record.get("eventName"))
                continue
            s3 = record["s3"]
            obj = s3["object"]
            found.append(
                S3Object(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(obj["key"]),
                    size_bytes=obj.get("size"),
                    etag=obj.get("eTag"),
                    version_id=obj.get("versionId"),
                    last_modified=_parse_time(record.get("eventTime")),
                )
            )
        return found
    raise EventError("not an S3 event notification, an EventBridge 'Object Created' event or an SQS batch of them")


def register_objects(
    conn,
    settings: Settings,
    file_types: tuple[FileType, ...],
    objects: Iterable[S3Object],
    registered_by: str,
) -> list[Registration]:
    """Register each object under its file type (``UNMATCHED`` when none matches); idempotent.

    Objects outside ``settings.landing_prefix`` (archive, quarantine, staging, reports) are ignored,
    so the pipeline's own writes never register as new files.

    :returns: one :class:`Registration` per object considered.
    """
    results = []
    for obj in objects:
        if not obj.key.startswith(settings.landing_prefix) or obj.key.endswith("/"):
            log.info("Ignoring %s: not a file under the landing prefix %s", obj.url, settings.landing_prefix)
            continue
        file_type = match_file_type(obj.key, file_types)
        name = file_type.name if file_type else None
        inserted = register.register_object(conn, settings, obj, name, registered_by)
        outcome = "unmatched" if name is None else ("registered" if inserted else "duplicate")
        if name is None:
            log.warning("%s matches no file type: registered as UNMATCHED", obj.url)
        log.info("%s -> %s (%s, file_id %s)", obj.url, name, outcome, obj.file_id)
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
        cur.execute(
            f"SELECT s3_key, etag, status FROM {settings.register_table.quoted} WHERE bucket = %(bucket)s",
            {"bucket": bucket},
        )
        known = {(key, etag): status for key, etag, status in cur.fetchall()}
    conn.rollback()
    missed = [o for o in landed if (o.key, o.etag) not in known]
    results = register_objects(conn, settings, file_types, missed, registered_by="reconcile")
    landed_keys = {o.key for o in landed}
    vanished = sorted(
        f"s3://{bucket}/{key}"
        for (key, _etag), status in known.items()
        if status in (register.NEW, register.IN_PROGRESS) and key not in landed_keys
    )
    for url in vanished:
        log.warning("%s is in the register but no longer in landing", url)
    return {
        "registered": [r.url for r in results if r.outcome == "registered"],
        "unmatched": [r.url for r in results if r.outcome == "unmatched"],
        "vanished": vanished,
    }


def connect_from_environment():
    """A psycopg2 connection from ``REDSHIFT_HOST/PORT/DATABASE/USER`` and a password fetched by name.

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
        sslmode=env.get("REDSHIFT_SSLMODE", "prefer"),
        connect_timeout=10,
        application_name="register_file",
    )


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
    settings, file_types = default_settings(), default_file_types()
    conn = connect_from_environment()
    try:
        register.ensure_register(conn, settings)
        s3 = boto3.client("s3")
        if args.reconcile:
            print(json.dumps(reconcile(conn, settings, file_types, s3), indent=2))
        objects = [head_object(s3, url) for url in args.urls]
        for path in args.event_file:
            with open(path, encoding="utf-8") as handle:
                objects.extend(objects_from_event(json.load(handle)))
        for result in register_objects(conn, settings, file_types, objects, registered_by="cli"):
            print(f"{result.outcome:10} {result.file_type or '-':20} {result.url} {result.file_id}")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
