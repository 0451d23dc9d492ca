"""Decode a byte stream into checked, normalised text that Redshift COPY can read as UTF-8.

Redshift loads UTF-8 only ("Your data can only contain UTF-8 characters up to four bytes long" —
AWS, Preparing your input data), so byte order marks are stripped, UTF-16 and declared legacy
encodings are re-encoded, and undecodable bytes either fail the file or become ``?`` like COPY's
``ACCEPTINVCHARS`` (default replacement ``?``, one per invalid byte — AWS COPY, Data conversion
parameters). NUL fails a file: COPY ends a record at NUL unless ``NULL AS '\\0'`` is set (Preparing
your input data). CR-only newlines become LF: COPY ends a row at LF only.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

import charset_normalizer

from .model import FileRejected, PrepareSpec
from .sniff import read_head

CHUNK = 256 * 1024
MAX_LEADING_WHITESPACE = 1024 * 1024

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF8, "utf-8", "utf-8 BOM stripped"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le -> utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be -> utf-8"),
)
_UTF8_COMPATIBLE = frozenset({"utf-8", "utf-8-sig", "ascii"})
_ASCII_NEWLINES = frozenset({"utf-8", "utf-8-sig", "ascii", "iso8859-1", "cp1252"})
_NEWLINE = re.compile(r"[\r\n]")

# COPY's ACCEPTINVCHARS replaces an invalid character by as many '?' as it has bytes.
_ERRORS = "redshift_ingest.acceptinvchars"
_replaced = threading.local()


def _acceptinvchars(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    width = exc.end - exc.start
    _replaced.count = getattr(_replaced, "count", 0) + width
    return "?" * width, exc.end


codecs.register_error(_ERRORS, _acceptinvchars)


AUTO = "auto"
#: What ``encoding: auto`` chooses among when a file is not UTF-8: the legacy encodings feeds mix
#: with UTF-8. Unrestricted detection guesses wrong on short samples (cp1250 for French text).
AUTO_CANDIDATES = ("cp1252", "latin_1")
DETECT_BYTES = 64 * 1024


def detect_legacy_encoding(sample: bytes) -> str:
    """The encoding of non-UTF-8 text: ``charset-normalizer``'s best match among cp1252 and latin-1
    for ``sample`` (the bytes from the first non-UTF-8 byte, up to 64 KiB are read); when it cannot
    tell (a few bytes only), cp1252 if it decodes them (WHATWG reads latin-1 labels as windows-1252),
    else latin-1, which decodes any byte.

    :returns: a Python codec name, ``"cp1252"`` or ``"latin-1"``.
    """
    sample = sample[:DETECT_BYTES]
    best = charset_normalizer.from_bytes(sample, cp_isolation=list(AUTO_CANDIDATES)).best()
    if best is not None:
        return "latin-1" if best.encoding == "latin_1" else best.encoding
    try:
        sample.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


class NeedsStaging(Exception):
    """Raised while only validating: the content must be rewritten, so the caller restarts staging."""


class TextStream:
    """One pass over a decompressed byte stream, yielding UTF-8-loadable text in chunks.

    With ``staging=False`` it only validates: the first time a rewrite would be needed (BOM,
    transcoding, CR-only newlines, invalid bytes to replace) it raises :class:`NeedsStaging`.
    ``changes`` lists the rewrites made, for ``PreparedFile.detected``.
    """

    def __init__(self, raw: BinaryIO, spec: PrepareSpec, *, staging: bool) -> None:
        self._raw = raw
        self._spec = spec
        self._staging = staging
        self._normalise_cr = spec.file_format == "csv"
        self.changes: list[str] = []
        self._auto = spec.encoding == AUTO
        self.encoding = "utf-8" if self._auto else codecs.lookup(spec.encoding).name
        self.replaced_bytes = 0
        self._lines = 0  # newlines seen so far, for error messages
        self._column = 0  # characters after the last newline so far, for error messages
        self._newline: str | None = None  # "lf" or "cr" once the first line end is seen
        self._carry_cr = False

    def _change(self, what: str) -> None:
        if not self._staging:
            raise NeedsStaging(what)
        if what not in self.changes:
            self.changes.append(what)

    def chunks(self) -> Iterator[str]:
        """Yield the decoded, normalised text; raise :class:`FileRejected` on bad content."""
        head = read_head(self._raw, 4)
        offset = 0
        for bom, encoding, change in _BOMS:
            if head.startswith(bom):
                self.encoding = encoding
                head = head[len(bom) :]
                offset = len(bom)
                self._change(change)
                break
        else:
            if self.encoding not in _UTF8_COMPATIBLE:
                self._change(f"{self._spec.encoding} -> utf-8")
        if self.encoding != "utf-8":
            self._auto = False  # a byte order mark decided
        replace = self._spec.invalid_chars == "replace"
        errors = _ERRORS if replace and self._staging else "strict"
        decoder = codecs.getincrementaldecoder(self.encoding)(errors=errors)
        data = head
        while True:
            if not data:
                data = self._raw.read(CHUNK)
            final = not data
            pending = decoder.getstate()[0]
            _replaced.count = 0
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                if self._auto:  # not UTF-8 after all: the rest is decoded as detected from here
                    self._auto = False
                    detected = detect_legacy_encoding(exc.object[exc.start :])
                    self.encoding = codecs.lookup(detected).name
                    self._change(f"{detected} (detected) -> utf-8")
                    decoder = codecs.getincrementaldecoder(self.encoding)(errors=errors)
                    text = exc.object[: exc.start].decode("utf-8") + decoder.decode(exc.object[exc.start :], final)
                else:
                    if replace:
                        self._change("invalid bytes -> '?'")
                    raise self._invalid(exc, offset - len(pending)) from None
            if _replaced.count:
                self.replaced_bytes += _replaced.count
                self._change("invalid bytes -> '?'")
            offset += len(data)
            data = b""
            text = self._normalise(text, final)
            if text:
                yield text
            if final:
                return

    def _where(self, before: str) -> str:
        """``line N, column C`` of the character after ``before`` (text not yet counted)."""
        newline = before.rfind("\n")
        column = len(before) - newline if newline >= 0 else self._column + len(before) + 1
        return f"line {self._lines + before.count(chr(10)) + 1}, column {column}"

    def _invalid(self, exc: UnicodeDecodeError, base: int) -> FileRejected:
        bad = exc.object[exc.start : exc.end]
        where = f"byte offset {base + exc.start}"
        if self.encoding in _ASCII_NEWLINES:
            where = f"{self._where(exc.object[: exc.start].decode(self.encoding, 'replace'))} ({where})"
        return FileRejected(
            f"{where}: byte(s) {bad.hex(' ')} are not valid {self.encoding} text; declare the file's "
            "encoding (prepare.encoding: latin-1, cp1252, utf-16, or auto to detect it per file) or set "
            "prepare.invalid_chars: replace"
        )

    def _normalise(self, text: str, final: bool) -> str:
        if self._carry_cr:
            text = "\r" + text
            self._carry_cr = False
        if not final and text.endswith("\r"):  # may be half of a CRLF split across chunks
            text = text[:-1]
            self._carry_cr = True
        if "\x00" in text:
            raise FileRejected(
                f"{self._where(text[: text.index(chr(0))])}: a NUL (0x00) character; COPY ends a record at "
                "NUL unless NULL AS '\\0' is set (AWS, Preparing your input data)"
            )
        if self._normalise_cr and self._newline is None:
            match = _NEWLINE.search(text)
            if match:
                i = match.start()
                cr_only = text[i] == "\r" and text[i + 1 : i + 2] != "\n"
                self._newline = "cr" if cr_only else "lf"
                if cr_only:
                    self._change("CR-only newlines -> LF")
        if self._newline == "cr":
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self._lines += text.count("\n")
        newline = text.rfind("\n")
        self._column = len(text) - newline - 1 if newline >= 0 else self._column + len(text)
        return text


def first_nonspace(chunks: Iterator[str]) -> tuple[str | None, Iterator[str]]:
    """Find the first non-whitespace character without losing any text.

    :returns: ``(char or None if the text is empty/whitespace only, the same text as an iterator)``.
    :raises FileRejected: more than 1 MiB of leading whitespace (not a data file).
    """
    seen: list[str] = []
    size = 0
    for chunk in chunks:
        seen.append(chunk)
        stripped = chunk.lstrip()
        if stripped:
            return stripped[0], itertools.chain(seen, chunks)
        size += len(chunk)
        if size > MAX_LEADING_WHITESPACE:
            raise FileRejected("expected data, found more than 1 MiB of leading whitespace")
    return None, iter(())


class Utf8Reader(io.RawIOBase):
    """A binary stream of UTF-8 bytes over text chunks (what ``ijson`` reads)."""

    if TYPE_CHECKING:  # blocking: io.RawIOBase.read never returns None here

        def read(self, size: int = -1, /) -> bytes: ...

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk.encode("utf-8"))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
