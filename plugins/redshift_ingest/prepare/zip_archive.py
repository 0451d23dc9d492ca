"""Zip archives: COPY cannot read them, so each data member is staged as gzip (and listed in a manifest).

Redshift COPY reads GZIP, BZIP2, LZOP and ZSTD, not ZIP (AWS COPY parameter reference, Data format
parameters). ``zipfile`` needs a seekable file, so the archive is spooled to a temp file (in memory
up to ``SPOOL_MEMORY`` bytes, then on disk); each member is then streamed out through
``ZipFile.open`` and the same checks as any other file (:func:`.content.process`) into gzip.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
import zipfile
from typing import Any, BinaryIO

from .content import Content, process
from .model import FileRejected, PreparedFile, PrepareSpec
from .sniff import MAGIC_LEN, PrefixedReader, guard, open_decompressed, read_head, sniff_container
from .staging import MANIFEST_NAME, GzipStage, delete_quietly, s3_url, staged_name, write_manifest

SPOOL_MEMORY = 4 * 1024 * 1024
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def data_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members that hold data: not directories, not ``__MACOSX/`` resource forks or OS junk files."""
    members = []
    for info in archive.infolist():
        base = posixpath.basename(info.filename)
        if info.is_dir() or info.filename.startswith("__MACOSX/") or base in _JUNK_NAMES or base.startswith("._"):
            continue
        members.append(info)
    return members


def _stage_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, spec: PrepareSpec, s3_client: Any, bucket: str, key: str
) -> Content:
    try:
        member = archive.open(info)
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:  # encrypted, unknown method
        raise FileRejected(f"expected a readable zip member, found: {exc}") from exc
    with member:
        stream = guard(member, "zip member")
        head = read_head(stream, MAGIC_LEN)
        container = sniff_container(head)
        if container == "zip":
            raise FileRejected("expected a csv/json member, found a nested zip archive")
        data = open_decompressed(guard(PrefixedReader(head, stream), "zip member"), container)
        with GzipStage() as out:
            content = process(data, spec, out)
            out.upload(s3_client, bucket, key)
    return content


def prepare_zip(
    source: BinaryIO, s3_client: Any, bucket: str, root: str, spec: PrepareSpec, size: int | None = None
) -> PreparedFile:
    """Stage the data members of the zip archive read from ``source`` as gzip objects under ``root``.

    :param source: the archive's bytes from the start (already sniffed as ``PK\\x03\\x04``).
    :param root: the staging root for this landed object (see :func:`.staging.staging_root`).
    :param size: the archive's size in bytes if known (S3 ``ContentLength``); archives larger than
        ``SPOOL_MEMORY`` (4 MiB) go straight to a temp file on disk.
    :returns: one member: ``copy_from`` = its staged gzip; several (``zip_members="manifest"``):
        ``copy_from`` = a manifest at ``root + "manifest.json"``, ``manifest=True``. Compression gzip.
    :raises FileRejected: corrupt or empty archive, several members with ``zip_members="single"``,
        duplicate member names, members with different CSV headers, or any member's own problem
        (message prefixed with the member name). Objects staged before the failure are deleted.
    """
    small = size is not None and size <= SPOOL_MEMORY
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) if small else tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(source, spool, 1024 * 1024)
        spool.seek(0)
        try:
            archive = zipfile.ZipFile(spool)
        except (zipfile.BadZipFile, OSError) as exc:
            raise FileRejected(f"expected a zip archive, found a corrupt one: {exc}") from exc
        with archive:
            return _stage_members(archive, s3_client, bucket, root, spec)


def _stage_members(archive: zipfile.ZipFile, s3_client: Any, bucket: str, root: str, spec: PrepareSpec) -> PreparedFile:
    members = data_members(archive)
    names = [info.filename for info in members]
    if not members:
        raise FileRejected(f"empty zip archive: no data members (found {len(archive.infolist())} entries)")
    if len(members) > 1 and spec.zip_members == "single":
        raise FileRejected(
            f"expected a zip archive with one member, found {len(members)} members: {', '.join(names)} "
            "(zip_members='manifest' loads them all)"
        )
    keys = [root + staged_name(name) for name in names]
    if len(set(keys)) != len(keys) or root + MANIFEST_NAME in keys:
        raise FileRejected(f"expected distinct member names, found duplicates among: {', '.join(names)}")
    written: list[str] = []
    try:
        contents: list[Content] = []
        for info, key in zip(members, keys, strict=True):
            try:
                contents.append(_stage_member(archive, info, spec, s3_client, bucket, key))
            except FileRejected as exc:
                raise FileRejected(f"zip member {info.filename!r}: {exc}") from exc
            written.append(key)
        headers = {tuple(n.casefold() for n in c.header) for c in contents if c.header is not None}
        if len(headers) > 1:
            found = "; ".join(f"{n} [{', '.join(c.header or ())}]" for n, c in zip(names, contents, strict=True))
            raise FileRejected(f"expected zip members with the same header, found {found}")
        described = "; ".join(f"{n}: {c.describe()}" for n, c in zip(names, contents, strict=True))
        header = contents[0].header
        if len(members) == 1:
            return PreparedFile(
                s3_url(bucket, keys[0]),
                False,
                "gzip",
                (keys[0],),
                f"zip (1 member) -> gzip; {described}",
                header,
            )
        manifest_key = root + MANIFEST_NAME
        write_manifest(s3_client, bucket, manifest_key, [s3_url(bucket, key) for key in keys])
        written.append(manifest_key)
        detected = f"zip ({len(members)} members) -> gzip + manifest; {described}"
        return PreparedFile(s3_url(bucket, manifest_key), True, "gzip", tuple(written), detected, header)
    except BaseException:
        delete_quietly(s3_client, bucket, written)
        raise
