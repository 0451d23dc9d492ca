"""Cheap CSV checks before COPY: the header against the file type's columns, and data after it.

Only the first ``header_lines`` CSV records are parsed (with the file type's delimiter and quote);
the rest of the file is streamed through untouched, looking only for one non-blank character.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator

from .columns import compare
from .model import FileRejected, PrepareSpec

MAX_HEADER_CHARS = 1024 * 1024


def _strip(name: str) -> str:
    return name.strip().strip("\ufeff").strip()


def _clean(name: str, quote: str) -> str:
    name = _strip(name)
    if len(name) >= 2 and name[0] == name[-1] == quote:
        name = _strip(name[1:-1])
    return name


class _Lines:
    """Whole lines of ``buf`` for ``csv.reader``; remembers how much was handed out."""

    def __init__(self, buf: str, eof: bool) -> None:
        self.buf, self.eof, self.consumed, self.ran_out = buf, eof, 0, False

    def __iter__(self) -> Iterator[str]:
        while True:
            end = self.buf.find("\n", self.consumed)
            if end < 0:
                if self.eof and self.consumed < len(self.buf):
                    line, self.consumed = self.buf[self.consumed :], len(self.buf)
                    yield line
                self.ran_out = True
                return
            line, self.consumed = self.buf[self.consumed : end + 1], end + 1
            yield line


def _parse_header(buf: str, spec: PrepareSpec, eof: bool) -> tuple[list[list[str]], int] | None:
    """The first ``header_lines`` records and the characters they use; ``None`` = need more text."""
    lines = _Lines(buf, eof)
    reader = csv.reader(lines, delimiter=spec.delimiter, quotechar=spec.quote_char)
    records: list[list[str]] = []
    try:
        for record in reader:
            if lines.ran_out and not eof:
                return None  # the record may continue in text not read yet
            records.append(record)
            if len(records) == spec.header_lines:
                break
    except csv.Error as exc:
        raise FileRejected(f"expected a CSV header, found unparseable text: {exc}") from exc
    if len(records) < spec.header_lines and not eof:
        return None
    return records, lines.consumed


def copy_csv(chunks: Iterator[str], spec: PrepareSpec, write: Callable[[str], None] | None) -> tuple[str, ...] | None:
    """Stream CSV text to ``write`` (or nowhere), checking the header and that data rows follow it.

    :param chunks: the decoded text (see :class:`.text.TextStream`), known not to be empty.
    :param write: called with every chunk, header included (COPY skips it with ``IGNOREHEADER``).
    :returns: the header (last of the ``header_lines`` records, names stripped of whitespace, BOM
        and quotes), or ``None`` when ``header_lines`` is 0.
    :raises FileRejected: "header does not match: expected [..], found [..]" (compared
        case-insensitively); "header only, no data rows"; a header longer than 1 MiB.
    """
    emit = write or (lambda _text: None)
    if spec.header_lines == 0:
        for chunk in chunks:
            emit(chunk)
        return None
    buf, eof = "", False
    while (parsed := _parse_header(buf, spec, eof)) is None:
        if len(buf) > MAX_HEADER_CHARS:
            raise FileRejected(f"expected {spec.header_lines} header line(s), found none within 1 MiB")
        more = next(chunks, None)
        eof = more is None
        buf += more or ""
    records, used = parsed
    header = tuple(_clean(name, spec.quote_char) for name in records[-1]) if records else None
    if spec.expected_columns is not None:
        expected = [_clean(name, spec.quote_char) for name in spec.expected_columns]
        if header is None or [n.casefold() for n in header] != [n.casefold() for n in expected]:
            found = ", ".join(header or ())
            drift = compare(expected, header or ())
            raise FileRejected(
                f"header does not match: expected [{', '.join(expected)}], found [{found}] ({drift.describe()})"
            )
    has_data = bool(buf[used:].strip())
    emit(buf)
    for chunk in chunks:
        emit(chunk)
        has_data = has_data or bool(chunk.strip())
    if not has_data:
        raise FileRejected(f"header only, no data rows: {spec.header_lines} header line(s) and nothing after")
    return header
