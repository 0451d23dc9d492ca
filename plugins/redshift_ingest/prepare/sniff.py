"""Tell a file's container by its first bytes (magic numbers, never the name) and open a decompressor.

Redshift COPY reads GZIP, BZIP2, LZOP and ZSTD files, not ZIP (AWS COPY parameter reference, "Data
format parameters" / "File compression parameters"), so zip is staged as gzip by
:mod:`.zip_archive`; gzip, bzip2 and zstd are read through a streaming decompressor here.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
import zlib
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol

import zstandard

from .model import FileRejected

Container = Literal["gzip", "bzip2", "zstd", "zip", "plain"]

MAGIC_LEN = 8
_MAGIC: tuple[tuple[bytes, Container], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
# Containers COPY or this step cannot read: reject with a clear name rather than load binary noise.
_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"PK\x05\x06", "empty zip archive"),
    (b"PK\x07\x08", "spanned zip archive (unsupported)"),
    (b"\x89LZO\x00\r\n\x1a\n", "lzop (unsupported by this prepare step)"),
    (b"\xfd7zXZ\x00", "xz (COPY does not read xz)"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive (COPY does not read 7z)"),
    (b"PAR1", "parquet (not a csv/json file type)"),
)


def sniff_container(head: bytes) -> Container:
    """Name the container of a stream from its first bytes.

    :param head: the first ``MAGIC_LEN`` bytes (fewer if the stream is shorter).
    :returns: ``"gzip"`` (``1f 8b``), ``"zip"`` (``PK 03 04``), ``"bzip2"`` (``BZh``), ``"zstd"``
        (``28 b5 2f fd``) or ``"plain"``.
    :raises FileRejected: an empty zip archive (``PK 05 06``) or a container COPY cannot read.
    """
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            raise FileRejected(f"expected a csv/json file (plain, gzip, bzip2, zstd or zip), found {name}")
    for magic, container in _MAGIC:
        if head.startswith(magic):
            return container
    return "plain"


class ByteReader(Protocol):
    """What the readers here read from: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end
    (a file, a decompressor, a zip member, botocore's ``StreamingBody``, the blocking readers below)."""

    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


def read_head(stream: ByteReader, size: int = MAGIC_LEN) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at end of stream."""
    parts: list[bytes] = []
    need = size
    while need > 0:
        part = stream.read(need)
        if not part:
            break
        parts.append(part)
        need -= len(part)
    return b"".join(parts)


class PrefixedReader(io.RawIOBase):
    """A readable stream that replays ``prefix`` (bytes already read for sniffing), then ``stream``."""

    if TYPE_CHECKING:  # blocking: io.RawIOBase.read never returns None here

        def read(self, size: int = -1, /) -> bytes: ...

    def __init__(self, prefix: bytes, stream: ByteReader) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class SourceReadError(Exception):
    """Reading the landed object itself failed (network, S3): not a data problem; ``__cause__`` says why."""


class SourceReader(io.RawIOBase):
    """Wraps the S3 body so its transport errors (some are ``OSError``) are never mistaken for
    corrupt compressed data by :func:`open_decompressed`; they surface as :class:`SourceReadError`."""

    if TYPE_CHECKING:  # blocking: io.RawIOBase.read never returns None here

        def read(self, size: int = -1, /) -> bytes: ...

    def __init__(self, stream: ByteReader) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._stream.read(len(buffer))
        except Exception as exc:
            raise SourceReadError(str(exc)) from exc
        buffer[: len(data)] = data
        return len(data)


_CORRUPT = (EOFError, OSError, zlib.error, zstandard.ZstdError, zipfile.BadZipFile)


class _GuardedReader(io.RawIOBase):
    """Turns a decompressor's corrupt-data errors into :class:`FileRejected`."""

    def __init__(self, stream: ByteReader, container: str) -> None:
        self._stream = stream
        self._container = container

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._stream.read(len(buffer))
        except _CORRUPT as exc:
            raise FileRejected(f"expected valid {self._container} data, found a corrupt stream: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


def open_decompressed(stream: BinaryIO, container: Container) -> BinaryIO:
    """Wrap ``stream`` in a streaming decompressor for ``container`` (``"plain"``: as is).

    gzip reads concatenated members (``gzip.GzipFile``), bzip2 multi-stream files (``bz2.BZ2File``),
    zstd all frames (``ZstdDecompressor().stream_reader(read_across_frames=True)``). Memory stays at
    the decompressors' window sizes, independent of the file size.

    :returns: a buffered binary stream of the decompressed bytes; its ``read`` raises
        :class:`FileRejected` on corrupt or truncated compressed data.
    """
    if container == "plain":
        return stream
    if container == "gzip":
        inner: ByteReader = gzip.GzipFile(fileobj=stream, mode="rb")
    elif container == "bzip2":
        inner = bz2.BZ2File(stream, mode="rb")
    elif container == "zstd":
        inner = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True, closefd=False)
    else:  # pragma: no cover - zip is handled by the caller
        raise ValueError(f"no streaming decompressor for {container}")
    return guard(inner, container)


def guard(stream: ByteReader, what: str) -> BinaryIO:
    """A buffered view of ``stream`` whose corrupt-data errors raise :class:`FileRejected`."""
    return io.BufferedReader(_GuardedReader(stream, what), buffer_size=256 * 1024)
