"""``prepare_file``: from a landed S3 object to what Redshift COPY reads."""

from __future__ import annotations

import contextlib
import io
from typing import Any, BinaryIO, cast

from .content import process
from .model import PreparedFile, PrepareSpec
from .sniff import (
    MAGIC_LEN,
    PrefixedReader,
    SourceReader,
    SourceReadError,
    open_decompressed,
    read_head,
    sniff_container,
)
from .staging import GzipStage, object_name, s3_url, staged_name, staging_root
from .text import NeedsStaging
from .zip_archive import prepare_zip

_BUFFER = 256 * 1024


def prepare_file(s3_client: Any, bucket: str, key: str, staging_prefix: str, spec: PrepareSpec) -> PreparedFile:
    """Make ``s3://bucket/key`` loadable by COPY, validating it cheaply first; stream, never slurp.

    Steps: sniff the container by magic number (not the name); zip → every data member staged as
    gzip (a manifest for several); otherwise one validating pass through the decompressed stream
    (nothing written). A file that needs nothing is passed through with its compression reported —
    it is still read once in full, as that is the only way to validate it. If a rewrite is needed
    (BOM, UTF-16 or a declared legacy encoding, invalid bytes to replace, CR-only newlines, a JSON
    array or records envelope), the object is read again (``IfMatch`` its ETag, so the same version)
    and staged as gzip. Memory stays at a few chunks of 256 KiB plus one JSON record, whatever the
    file size; staged output goes through a temp file on disk.

    Staged keys are deterministic (a retry overwrites them): ``<staging_prefix>/<key>/<name>.gz``,
    ``<staging_prefix>/<key>/<zip member>.gz`` and ``<staging_prefix>/<key>/manifest.json``, all in
    ``bucket``; a ``/`` is added after a non-empty ``staging_prefix`` that lacks one.

    :param s3_client: a boto3 S3 client.
    :param bucket: bucket of the landed object; staged objects go to the same bucket.
    :param key: the landed object's key.
    :param staging_prefix: key prefix for staged objects (e.g. ``"staging/"``).
    :param spec: the file type's declared format (see :class:`PrepareSpec`).
    :returns: a :class:`PreparedFile`; its ``compression`` is what COPY must be told.
    :raises FileRejected: the file is unusable (empty, wrong file type, bad encoding, NUL, header
        mismatch or header only, invalid JSON, corrupt compression, unsupported container, zip with
        several members and ``zip_members="single"``); quarantine it. Errors reading S3 (e.g.
        ``botocore`` ``ClientError``, timeouts) are raised as they are: retry those.
    """
    root = staging_root(staging_prefix, key)
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
        with contextlib.closing(response["Body"]):
            source = SourceReader(response["Body"])
            head = read_head(source, MAGIC_LEN)
            container = sniff_container(head)
            stream: BinaryIO = io.BufferedReader(PrefixedReader(head, source), _BUFFER)
            if container == "zip":
                return prepare_zip(stream, s3_client, bucket, root, spec, response.get("ContentLength"))
            try:
                content = process(open_decompressed(stream, container), spec, None)
            except NeedsStaging:
                pass
            else:
                prefix = "" if container == "plain" else f"{container} "
                compression = None if container == "plain" else container
                return PreparedFile(
                    s3_url(bucket, key),
                    False,
                    compression,
                    (),
                    f"pass-through {prefix}{content.kind}",
                    content.header,
                )
        staged_key = root + staged_name(object_name(key))
        etag = {"IfMatch": response["ETag"]} if response.get("ETag") else {}
        response = s3_client.get_object(Bucket=bucket, Key=key, **etag)
        with contextlib.closing(response["Body"]), GzipStage() as out:
            stream = io.BufferedReader(SourceReader(response["Body"]), _BUFFER)
            content = process(open_decompressed(stream, container), spec, out)
            out.upload(s3_client, bucket, staged_key)
    except SourceReadError as exc:
        raise cast(BaseException, exc.__cause__) from None  # the transport error itself, so the task retries
    prefix = "" if container == "plain" else f"{container} "
    return PreparedFile(
        s3_url(bucket, staged_key),
        False,
        "gzip",
        (staged_key,),
        f"{prefix}{content.describe()} -> gzip",
        content.header,
    )
