"""Turn a decompressed input stream into records for the target columns, per Redshift data format.

Formats (AWS "COPY parameter reference", data format parameters):

* text (default): one record per line, fields split at DELIMITER (default ``|``); a backslash is an
  escape character only with ESCAPE; a trailing delimiter after the last column is tolerated
  (as in the ``venue_noseats.txt`` example of "COPY examples").
* CSV: RFC 4180 style via the ``csv`` module, QUOTE (default ``"``), doubled quotes, quoted newlines.
* JSON: a stream of JSON objects (or arrays, with JSONPaths), whitespace or nothing between them,
  mapped with 'auto' (keys = column names), 'auto ignorecase' or a JSONPaths file.

NULL AS (default ``\\N``) is matched here; the converters (``convert.py``) apply the type rules.
Records carry the 1-based line number where they start (JSON: where the object ends, as
STL_LOAD_ERRORS documents) and the raw text for ``raw_line``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redshift_local.copy_command import CopySpec, CopySyntaxError
from redshift_local.sources import iter_text_lines

_MAX_JSON_OBJECT = 4 * 1024 * 1024  # Redshift's limit for one JSON object
_JSON_CHUNK = 64 * 1024
_WHITESPACE = re.compile(r"\s*")


@dataclass
class Record:
    """One input record: ``values`` for the target columns (None = NULL), or a line-level ``error``."""

    line_number: int
    raw_line: str
    values: list[str | None] | None = None
    error: tuple[int, str, int] | None = None  # (err_code, err_reason, position)


def _skip_header(lines: Iterator[str], count: int) -> int:
    skipped = 0
    for _ in range(count):
        if next(lines, None) is None:
            break
        skipped += 1
    return skipped


def _fit_columns(
    fields: list[str],
    ncols: int,
    line: int,
    raw: str,
    null_as: str,
    values: list[str] | None = None,
    *,
    fill: bool = False,
) -> Record:
    """Check the field count and map NULL AS. ``fields`` are the raw fields (compared with NULL AS),
    ``values`` their unescaped text (default: the raw fields). A trailing delimiter after the last
    column is dropped before NULL AS is applied, so ``NULL AS ''`` behaves like EMPTYASNULL there.
    ``fill`` (FILLRECORD) adds empty fields for missing trailing columns: NULL for non-character
    columns, '' for CHAR/VARCHAR unless EMPTYASNULL (COPY parameter reference, FILLRECORD)."""
    if len(fields) == ncols + 1 and fields[-1] == "":
        fields = fields[:-1]  # trailing delimiter
        values = values[:-1] if values is not None else None
    if fill and len(fields) < ncols:
        missing = [""] * (ncols - len(fields))
        values = [*values, *missing] if values is not None else None
        fields = [*fields, *missing]
    if len(fields) < ncols:
        return Record(line, raw, error=(1214, "Delimiter not found", len(raw)))
    if len(fields) > ncols:
        return Record(line, raw, error=(1214, "Extra column(s) found", len(raw)))
    texts = fields if values is None else values
    pairs = zip(fields, texts, strict=True)
    return Record(line, raw, values=[None if field == null_as else text for field, text in pairs])


def _split_escaped(text: str, delimiter: str) -> list[tuple[str, str]]:
    """Split at unescaped delimiters; returns ``(raw field, unescaped field)`` pairs."""
    fields: list[tuple[str, str]] = []
    raw_start, value, index = 0, [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            value.append(text[index + 1])
            index += 2
            continue
        if char == delimiter:
            fields.append((text[raw_start:index], "".join(value)))
            raw_start, value = index + 1, []
        else:
            value.append(char)
        index += 1
    fields.append((text[raw_start:], "".join(value)))
    return fields


def _split_quoted(text: str, delimiter: str) -> list[str] | None:
    """REMOVEQUOTES: split at delimiters outside quotes and drop the surrounding quotation marks
    (``"`` or ``'``); None when a quote is not closed (COPY parameter reference, REMOVEQUOTES)."""
    fields: list[str] = []
    index, size = 0, len(text)
    while True:
        if index < size and text[index] in "\"'":
            quote = text[index]
            end = text.find(quote, index + 1)
            if end < 0:
                return None
            value = text[index + 1 : end]
            nxt = text.find(delimiter, end + 1)
            value += text[end + 1 : size if nxt < 0 else nxt]
        else:
            nxt = text.find(delimiter, index)
            value = text[index : size if nxt < 0 else nxt]
        fields.append(value)
        if nxt < 0:
            return fields
        index = nxt + 1


def _fixed_fields(text: str, widths: list[int]) -> list[str]:
    """FIXEDWIDTH: cut the line into the declared widths (characters); a short line gives short or
    empty trailing fields."""
    fields, pos = [], 0
    for width in widths:
        fields.append(text[pos : pos + width])
        pos += width
    return fields


def text_records(stream: io.BufferedIOBase, spec: CopySpec, ncols: int) -> Iterator[Record]:
    """Records of a Redshift text-format file: character-delimited (DELIMITER, ESCAPE, REMOVEQUOTES)
    or FIXEDWIDTH; IGNOREBLANKLINES skips lines holding only a line feed (not counted as records)."""
    lines = iter_text_lines(stream)
    line_number = _skip_header(lines, spec.ignore_header)
    delimiter, null_as, fill = spec.field_delimiter, spec.null_as, spec.fill_record
    widths = [width for _label, width in spec.fixed_width] if spec.fixed_width is not None else None
    for line in lines:
        line_number += 1
        if spec.ignore_blank_lines and line == "\n":
            continue
        start = line_number
        text = line[:-1] if line.endswith("\n") else line
        if widths is not None:
            if len(widths) != ncols:
                yield Record(start, text, error=(1203, "Incorrect number of columns for fixed-width data", 0))
                continue
            yield _fit_columns(_fixed_fields(text, widths), ncols, start, text, null_as, fill=fill)
        elif spec.escape:
            while line.endswith("\n") and (len(text) - len(text.rstrip("\\"))) % 2 == 1:
                nxt = next(lines, None)  # an escaped newline continues the record
                if nxt is None:
                    break
                line_number += 1
                line = nxt
                text = text + "\n" + (nxt[:-1] if nxt.endswith("\n") else nxt)
            pairs = _split_escaped(text, delimiter)
            raw_fields, values = [raw for raw, _ in pairs], [v for _, v in pairs]
            yield _fit_columns(raw_fields, ncols, start, text, null_as, values, fill=fill)
        elif spec.remove_quotes:
            fields = _split_quoted(text, delimiter)
            if fields is None:
                yield Record(start, text, error=(1214, "Unterminated quoted string (REMOVEQUOTES)", len(text)))
            else:
                yield _fit_columns(fields, ncols, start, text, null_as, fill=fill)
        else:
            yield _fit_columns(text.split(delimiter), ncols, start, text, null_as, fill=fill)


class _CountingLines:
    """Iterates lines for ``csv.reader`` while counting them and keeping the current record's text."""

    def __init__(self, lines: Iterator[str], line_number: int) -> None:
        self.lines = lines
        self.line_number = line_number
        self.pending: list[str] = []

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.line_number += 1
        self.pending.append(line)
        return line

    def take_raw(self) -> str:
        raw = "".join(self.pending)
        self.pending = []
        return raw.rstrip("\r\n")


def csv_records(stream: io.BufferedIOBase, spec: CopySpec, ncols: int) -> Iterator[Record]:
    """Records of a CSV file (CSV [QUOTE [AS] 'c'], DELIMITER, IGNOREHEADER, NULL AS)."""
    lines = iter_text_lines(stream)
    counter = _CountingLines(lines, _skip_header(lines, spec.ignore_header))
    reader = csv.reader(counter, delimiter=spec.field_delimiter, quotechar=spec.quote, doublequote=True, strict=False)
    null_as = spec.null_as
    while True:
        start = counter.line_number + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(start, counter.take_raw(), error=(1216, f"Invalid CSV input: {exc}", 0))
            return
        raw = counter.take_raw()
        if spec.ignore_blank_lines and not row and raw == "":
            continue
        yield _fit_columns(row or [""], ncols, start, raw, null_as, fill=spec.fill_record)


_JSONPATH_PART = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w$]*)|\[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]|\[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]|\[\s*(?P<index>\d+)\s*\]"""
)


def parse_jsonpath(expression: str) -> list[str | int]:
    """``$['a'].b[0]`` -> ``['a', 'b', 0]``. Raises ``CopySyntaxError`` for an invalid expression."""
    text = expression.strip()
    if not text.startswith("$"):
        raise CopySyntaxError(f"Invalid JSONPath format: {expression!r}")
    parts: list[str | int] = []
    pos = 1
    while pos < len(text):
        match = _JSONPATH_PART.match(text, pos)
        if match is None:
            raise CopySyntaxError(f"Invalid JSONPath format: {expression!r}")
        if match.group("index") is not None:
            parts.append(int(match.group("index")))
        else:
            parts.append(match.group("name") or match.group("sq") or match.group("dq") or "")
        pos = match.end()
    return parts


def load_jsonpaths(data: bytes, ncols: int) -> list[list[str | int]]:
    """Parse a JSONPaths file (``{"jsonpaths": [...]}``); its length must equal the column count."""
    try:
        expressions = json.loads(data)["jsonpaths"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CopySyntaxError(f"Invalid JSONPaths file: {exc}") from exc
    if len(expressions) != ncols:
        raise CopySyntaxError(
            "Number of jsonpaths and the number of columns should match. "
            f"JSONPath size: {len(expressions)}, Number of columns in table or column list: {ncols}"
        )
    return [parse_jsonpath(e) for e in expressions]


def _json_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def _lookup(document: Any, path: list[str | int]) -> Any:
    for part in path:
        in_list = isinstance(part, int) and isinstance(document, list) and part < len(document)
        if in_list or (isinstance(part, str) and isinstance(document, dict) and part in document):
            document = document[part]
        else:
            return None
    return document


def json_records(
    stream: io.BufferedIOBase, spec: CopySpec, columns: list[str], paths: list[list[str | int]] | None
) -> Iterator[Record]:
    """Records of a JSON file; objects are decoded one at a time from a sliding text window."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    decoder = json.JSONDecoder(parse_float=Decimal)
    ignore_case = spec.json_paths == "auto ignorecase"
    buffer, pos, line, eof = "", 0, 1, False
    while True:
        end_ws = _WHITESPACE.match(buffer, pos).end()
        line += buffer.count("\n", pos, end_ws)
        pos = end_ws
        if pos >= len(buffer):
            if eof:
                return
            buffer, pos = text.read(_JSON_CHUNK), 0
            eof = not buffer
            continue
        try:
            document, end = decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError as exc:
            if not eof and len(buffer) - pos < _MAX_JSON_OBJECT:
                chunk = text.read(_JSON_CHUNK)
                eof = not chunk
                buffer, pos = buffer[pos:] + chunk, 0
                continue
            raw = buffer[pos : pos + 1024]
            yield Record(line, raw, error=(1216, f"Invalid JSON object: {exc.msg}", exc.pos - pos))
            return
        line_end = line + buffer.count("\n", pos, end)
        raw = buffer[pos:end]
        pos, line = end, line_end
        if paths is not None:
            yield Record(line_end, raw, values=[_json_value(_lookup(document, p)) for p in paths])
        elif not isinstance(document, dict):
            yield Record(line_end, raw, error=(1216, "Invalid JSONPath format: top-level value is not an object", 0))
        else:
            if ignore_case:
                document = {str(k).lower(): v for k, v in document.items()}
            yield Record(line_end, raw, values=[_json_value(document.get(c)) for c in columns])
        if pos > _JSON_CHUNK:
            buffer, pos = buffer[pos:], 0
