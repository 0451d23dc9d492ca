"""Staged objects: deterministic keys, gzip writing through a temp file, the manifest, cleanup.

Every staged object is gzip, written with a fixed header (no file name, ``mtime=0``) so the same
input always stages the same bytes under the same keys: a retry overwrites, never duplicates.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import posixpath
import tempfile
from collections.abc import Iterable
from typing import Any

from redshift_ingest.paths import STAGED_NAME_BYTES, shorten, staged_key_root

from .model import PreparedFile

_COMPRESSION_SUFFIXES = (".gz", ".gzip", ".bz2", ".zst", ".zstd")
MANIFEST_NAME = "manifest.json"


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def staging_root(staging_prefix: str, key: str) -> str:
    """``<staging_prefix>/<original key>/``: everything staged for one landed object lives here.

    Shortened (:func:`redshift_ingest.paths.staged_key_root`) when the key is too long for it.
    """
    return staged_key_root(staging_prefix, key)


def staged_name(name: str) -> str:
    """Object name for staged content: compression suffix dropped, unsafe path parts removed, ``.gz``;
    at most 128 bytes (a longer name is shortened, see :func:`redshift_ingest.paths.shorten`)."""
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = posixpath.normpath("/" + name).lstrip("/")  # "a/../b.csv" -> "b.csv"; never above the root
    return shorten(name or "data", STAGED_NAME_BYTES - len(".gz")) + ".gz"


def object_name(key: str) -> str:
    return posixpath.basename(key) or "data"


class GzipStage:
    """Gzip-compress written bytes into a temp file on disk, then upload it (multipart if large)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._gzip = gzip.GzipFile(filename="", fileobj=self._file, mode="wb", compresslevel=6, mtime=0)

    def write(self, data: bytes) -> None:
        self._gzip.write(data)

    def upload(self, s3_client: Any, bucket: str, key: str) -> None:
        """Finish the gzip stream and put it at ``s3://bucket/key`` with ``upload_fileobj``."""
        self._gzip.close()
        self._file.seek(0)
        s3_client.upload_fileobj(self._file, bucket, key, ExtraArgs={"ContentType": "application/gzip"})

    def close(self) -> None:
        self._gzip.close()
        self._file.close()

    def __enter__(self) -> GzipStage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_manifest(s3_client: Any, bucket: str, key: str, urls: Iterable[str]) -> None:
    """Put a Redshift manifest listing ``urls``, each ``mandatory`` (a missing file fails the COPY).

    Format ``{"entries": [{"url": "s3://...", "mandatory": true}, ...]}`` — AWS, "Using a manifest to
    specify data files"; COPY reads it with ``MANIFEST`` and still needs ``GZIP`` for gzip entries.
    """
    body = {"entries": [{"url": url, "mandatory": True} for url in urls]}
    s3_client.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(body, indent=1).encode(), ContentType="application/json"
    )


def delete_keys(s3_client: Any, bucket: str, keys: Iterable[str]) -> None:
    """Delete ``keys`` (1,000 per request); keys already gone are fine (S3 delete is idempotent).

    :raises RuntimeError: S3 reported per-key errors (e.g. AccessDenied); lists the first ones.
    """
    keys = list(dict.fromkeys(keys))
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        response = s3_client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            shown = ", ".join(f"{e.get('Key')}: {e.get('Code')}" for e in errors[:5])
            raise RuntimeError(f"could not delete {len(errors)} staged object(s) from {bucket}: {shown}")


def delete_quietly(s3_client: Any, bucket: str, keys: Iterable[str]) -> None:
    """Best-effort cleanup after a failed prepare; the original error is what matters."""
    with contextlib.suppress(Exception):
        delete_keys(s3_client, bucket, keys)


def cleanup_staging(s3_client: Any, bucket: str, prepared: PreparedFile) -> None:
    """Delete the objects a prepare step staged (after the COPY, or when giving up). Idempotent.

    :param s3_client: a boto3 S3 client.
    :param bucket: the bucket ``prepare_file`` staged into (the landed object's bucket).
    :param prepared: what ``prepare_file`` returned; pass-through files have nothing to delete and
        the original object is never touched.
    :raises RuntimeError: S3 refused to delete some keys.
    """
    if prepared.staged_keys:
        delete_keys(s3_client, bucket, prepared.staged_keys)
