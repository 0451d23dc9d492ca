"""S3 side of COPY: resolve the data source into objects and open them as decompressed byte streams.

Redshift semantics (AWS "COPY parameter reference", data source parameters): ``FROM 's3://b/p'``
loads every object whose key starts with ``p``; with MANIFEST the object is a JSON manifest whose
``entries`` list ``url`` (and optional ``mandatory``, default false) of the files to load.
Objects are read as boto3 ``StreamingBody`` in chunks; nothing holds a whole object in memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

_READ_SIZE = 1024 * 1024
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class SourceError(Exception):
    """The data source cannot be read: prefix with no objects, bad manifest, missing mandatory file."""


@dataclass(frozen=True)
class S3Object:
    """One S3 object a COPY reads; ``etag`` (without quotes) and ``last_modified`` (naive UTC) as S3
    reports them, for SYS_LOAD_DETAIL."""

    bucket: str
    key: str
    size: int
    etag: str = ""
    last_modified: datetime | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``. Raises ``SourceError`` for anything else."""
    if not url.lower().startswith("s3://") or "/" not in url[5:]:
        if url.lower().startswith("s3://") and url[5:]:
            return url[5:], ""
        raise SourceError(f"Invalid S3 URL '{url}'")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def s3_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; the endpoint comes from ``endpoint_url`` or ``$AWS_ENDPOINT_URL`` (moto)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
        region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _object(bucket: str, key: str, size: int, etag: str | None, modified: datetime | None) -> S3Object:
    return S3Object(bucket, key, size, (etag or "").strip('"'), _naive_utc(modified))


def list_prefix(client: Any, url: str) -> list[S3Object]:
    """All objects whose key starts with the key prefix of ``url``, in key order.

    Raises ``SourceError`` ("The specified S3 prefix ... does not exist") when there are none.
    """
    bucket, prefix = split_url(url)
    objects: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/") and item["Size"] == 0:
                    continue  # a "folder" marker, not data
                objects.append(_object(bucket, item["Key"], item["Size"], item.get("ETag"), item.get("LastModified")))
    except Exception as exc:
        if _is_missing(exc):
            raise SourceError(f"The specified S3 prefix '{prefix}' does not exist") from exc
        raise SourceError(f"S3ServiceException: {exc}") from exc
    if not objects:
        raise SourceError(f"The specified S3 prefix '{prefix}' does not exist")
    return objects


def read_small_object(client: Any, url: str, what: str) -> bytes:
    """Read a small control object (manifest, JSONPaths file), at most 64 MiB."""
    bucket, key = split_url(url)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:
        raise SourceError(f"Cannot read {what} '{url}': {exc}") from exc
    data = body.read(_MAX_MANIFEST_BYTES + 1)
    body.close()
    if len(data) > _MAX_MANIFEST_BYTES:
        raise SourceError(f"{what} '{url}' is larger than 64 MiB")
    return data


def read_manifest(client: Any, url: str) -> list[S3Object]:
    """The files a Redshift manifest lists (``{"entries": [{"url": ..., "mandatory": bool}]}``).

    Each entry's ``url`` names one whole object (not a prefix). Missing non-mandatory entries are
    skipped (logged); a missing mandatory entry raises ``SourceError``, as does a manifest that is not
    valid JSON or has no ``entries``, and one where no listed file exists ("Regardless of any mandatory
    settings, COPY will terminate if no files are found": AWS "Using a manifest to specify data files").
    """
    try:
        manifest = json.loads(read_small_object(client, url, "manifest file"))
        entries = manifest["entries"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"Manifest file '{url}' is not in correct json format: {exc}") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "url" in e for e in entries):
        raise SourceError(f"Manifest file '{url}' is not in correct json format: each entry needs a \"url\"")
    objects: list[S3Object] = []
    for entry in entries:
        entry_url = entry["url"]
        bucket, key = split_url(entry_url)
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if not _is_missing(exc):
                raise SourceError(f"S3ServiceException: {exc}") from exc
            if entry.get("mandatory", False):
                raise SourceError(f"Manifest file entry '{entry_url}' is mandatory but does not exist") from exc
            log.info("manifest entry %s is not mandatory and does not exist: skipped", entry_url)
            continue
        objects.append(_object(bucket, key, head["ContentLength"], head.get("ETag"), head.get("LastModified")))
    if not objects:
        raise SourceError(f"Manifest file '{url}' lists no files that exist: no files found to load")
    return objects


class _BodyReader(io.RawIOBase):
    """Adapts a botocore ``StreamingBody`` to ``io.RawIOBase`` so it can be buffered and decompressed."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def open_object(client: Any, obj: S3Object, compression: str | None) -> tuple[io.BufferedIOBase, _BodyReader]:
    """Open ``obj`` for streaming: returns ``(decompressed binary stream, raw reader)``.

    ``compression`` is None, GZIP, BZIP2 or ZSTD (COPY file compression parameters).
    The raw reader's ``bytes_read`` counts compressed bytes scanned.
    """
    try:
        body = client.get_object(Bucket=obj.bucket, Key=obj.key)["Body"]
    except Exception as exc:
        raise SourceError(f"S3ServiceException: cannot read '{obj.url}': {exc}") from exc
    raw = _BodyReader(body)
    buffered = io.BufferedReader(raw, _READ_SIZE)
    if compression == "GZIP":
        return gzip.GzipFile(fileobj=buffered, mode="rb"), raw
    if compression == "BZIP2":
        return bz2.BZ2File(buffered, mode="rb"), raw
    if compression == "ZSTD":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, _READ_SIZE), raw
    return buffered, raw


_CODECS = {"UTF16": "utf-16", "UTF16LE": "utf-16-le", "UTF16BE": "utf-16-be"}


class _Utf8Transcoder(io.RawIOBase):
    """Re-encodes a UTF-16 byte stream as UTF-8, chunk by chunk (undecodable units become U+FFFD)."""

    def __init__(self, stream: io.BufferedIOBase, codec: str) -> None:
        self._text = io.TextIOWrapper(stream, encoding=codec, errors="replace", newline="")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._text.read(_READ_SIZE // 2)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8", "surrogatepass")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._text.close()
        super().close()


def as_utf8(stream: io.BufferedIOBase, encoding: str) -> io.BufferedIOBase:
    """``stream`` decoded from COPY's ENCODING (UTF8, UTF16 with a byte order mark, UTF16LE, UTF16BE)
    and re-encoded as UTF-8, streaming (AWS "COPY parameter reference", ENCODING)."""
    if encoding == "UTF8":
        return stream
    return io.BufferedReader(_Utf8Transcoder(stream, _CODECS[encoding]), _READ_SIZE)


def iter_text_lines(stream: io.BufferedIOBase) -> Iterator[str]:
    """Lines of ``stream`` decoded as UTF-8 one at a time; invalid bytes become lone surrogates
    (``surrogateescape``) so the converter can reject or replace them per field (ACCEPTINVCHARS)."""
    for raw_line in stream:
        yield raw_line.decode("utf-8", "surrogateescape")
