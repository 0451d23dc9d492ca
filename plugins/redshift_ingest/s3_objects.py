"""Moving landed objects: archive and quarantine keep the original key under another prefix.

Both are a copy then a delete (S3 has no rename), with Airflow's ``S3Hook``, and safe to repeat:
when the source is gone and the destination exists, the move already happened.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)


def s3_hook(aws_conn_id: str) -> S3Hook:
    """Airflow's ``S3Hook`` for ``aws_conn_id`` (the Amazon provider is imported here, inside tasks,
    not when the DAG folder is parsed)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id)


#: Error codes of an S3 request refused for permissions or configuration (AWS "Error responses",
#: S3 REST API): a retry does not help until a person fixes a policy, a role or the bucket. moto's
#: server answers a bucket-policy denial with the bare status "403".
REFUSED_CODES = frozenset(
    {"AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId", "NoSuchBucket", "403"}
)


def refusal(err: BaseException) -> str | None:
    """The S3 error code when ``err`` is a request S3 refused for permissions or configuration
    (:data:`REFUSED_CODES`, or HTTP 403), else None (a passing problem, or not an S3 error)."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return None
    code = str((response.get("Error") or {}).get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if code in REFUSED_CODES or status == 403:
        return "AccessDenied" if code in ("403", "") else code
    return None


class ObjectMissing(FileNotFoundError):
    """Neither the source nor the destination of a move exists: the file is lost or was never there."""


class ObjectConflict(FileExistsError):
    """The destination holds another object (e.g. a newer upload of the same key): nothing was moved."""


def move_object(hook: S3Hook, bucket: str, key: str, dest_key: str, *, overwrite: bool = True) -> str:
    """Move ``s3://bucket/key`` to ``s3://bucket/dest_key``; idempotent.

    :param overwrite: False for moves back into landing: when ``dest_key`` already holds an object
        with another ETag (a newer upload of the key), refuse rather than overwrite it.
    :returns: ``dest_key``.
    :raises ObjectMissing: neither key exists.
    :raises ObjectConflict: ``overwrite`` is False and ``dest_key`` holds a different object.
    """
    if hook.check_for_key(key, bucket_name=bucket):
        if not overwrite and hook.check_for_key(dest_key, bucket_name=bucket):
            here = hook.head_object(key, bucket_name=bucket)
            there = hook.head_object(dest_key, bucket_name=bucket)
            if (here or {}).get("ETag") != (there or {}).get("ETag"):
                raise ObjectConflict(
                    f"s3://{bucket}/{dest_key} holds another object (ETag {there.get('ETag')}) than "
                    f"s3://{bucket}/{key} (ETag {here.get('ETag')}): not overwriting it. Load or move that "
                    "object first, then try again"
                )
        hook.copy_object(
            source_bucket_key=key,
            dest_bucket_key=dest_key,
            source_bucket_name=bucket,
            dest_bucket_name=bucket,
        )
        hook.delete_objects(bucket=bucket, keys=[key])
        log.info("Moved s3://%s/%s to s3://%s/%s", bucket, key, bucket, dest_key)
        return dest_key
    if hook.check_for_key(dest_key, bucket_name=bucket):
        log.info("s3://%s/%s is already at s3://%s/%s", bucket, key, bucket, dest_key)
        return dest_key
    raise ObjectMissing(f"s3://{bucket}/{key} is not there, and not at s3://{bucket}/{dest_key} either")
