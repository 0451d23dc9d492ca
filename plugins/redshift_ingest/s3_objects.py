"""Moving landed objects: archive and quarantine keep the original key under another prefix.

Both are a copy then a delete (S3 has no rename), with Airflow's ``S3Hook``, and safe to repeat:
when the source is gone and the destination exists, the move already happened.
"""

from __future__ import annotations

import logging

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)


class ObjectMissing(FileNotFoundError):
    """Neither the source nor the destination of a move exists: the file is lost or was never there."""


def move_object(hook: S3Hook, bucket: str, key: str, dest_key: str) -> str:
    """Move ``s3://bucket/key`` to ``s3://bucket/dest_key``; idempotent.

    :returns: ``dest_key``.
    :raises ObjectMissing: neither key exists.
    """
    if hook.check_for_key(key, bucket_name=bucket):
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
