"""The load path for delimited text and CSV, a batch of records at a time, column by column.

The per-record path (``records`` + ``convert``) calls a Python converter for every field; this path
gets the same results with far fewer Python steps:

* lines are read and decoded by ``io.TextIOWrapper`` (split at ``\\n`` only, invalid UTF-8 bytes kept
  as lone surrogates, as ``sources.iter_text_lines`` does) and CSV is parsed by the ``csv`` module;
* a batch's fields are transposed into columns, and each column is judged at once: a column whose
  values all have the plain form the converter would pass through unchanged (digits for integers,
  ``YYYY-MM-DD`` dates, short enough valid UTF-8 for VARCHAR...) is taken as is; otherwise each
  distinct value is converted once by the column's own converter (``convert.make_converter``);
* only a record whose field count is off, or with a value the converter rejects, is handled alone,
  by the same code as the per-record path, so STL_LOAD_ERRORS rows are the same;
* the good rows are written for PostgreSQL's ``COPY FROM STDIN (FORMAT csv)`` by ``csv.writer``
  (``QUOTE_NOTNULL``: NULL unquoted, every value quoted).

Used when the COPY has none of ESCAPE, FIXEDWIDTH, REMOVEQUOTES, ACCEPTINVCHARS (whose effects are
per record); those, JSON and the columnar formats take the per-record path.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from redshift_local.convert import Column, Converter, FieldError
from redshift_local.copy_command import CopySpec
from redshift_local.records import Record, _fit_columns

BATCH_RECORDS = 8192
_CHAR = {"varchar", "text", "name"}
_INT_DIGITS = {"int2": 4, "int4": 9, "int8": 18}  # digits that always fit the type
_SEP = "\n"  # values joined for one regex pass; a value holding it makes the check fail (then slower path)
_INVALID_TEXT = re.compile("[\udc80-\udcff\x00\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0001ffff\U0010fffe\U0010ffff]")
_PLAIN_FLOAT = re.compile(r"(?:-?\d{1,15}(?:\.\d{1,17})?\n)*-?\d{1,15}(?:\.\d{1,17})?")
_PLAIN_DATE = re.compile(r"(?:\d{4}-\d\d-\d\d\n)*\d{4}-\d\d-\d\d")
_PLAIN_TS = re.compile(
    r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\n)*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?"
)


def eligible(spec: CopySpec) -> bool:
    """True when this path gives the per-record path's results for ``spec`` (see the module docstring)."""
    return (
        spec.format in ("TEXT", "CSV")
        and not spec.escape
        and spec.fixed_width is None
        and not spec.remove_quotes
        and spec.accept_inv_chars is None
    )


@dataclass
class Batch:
    """Up to ``BATCH_RECORDS`` records: raw fields, the line each starts on, and their raw text."""

    fields: list[list[str]]
    starts: list[int]
    raws: Callable[[int], str]  # record index -> raw_line


def text_batches(stream: io.BufferedIOBase, spec: CopySpec, first_line: int | None = None) -> Iterator[Batch]:
    """Batches of a delimited text or CSV stream, with Redshift's line numbering (IGNOREHEADER lines
    counted, IGNOREBLANKLINES lines skipped but counted). With ``first_line`` the stream starts at that
    line (the header is already behind)."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="\n")
    if first_line is None:
        for _ in range(spec.ignore_header):
            if not text.readline():
                return
    first = spec.ignore_header + 1 if first_line is None else first_line  # line number of the next line
    if spec.format == "CSV":
        yield from _csv_batches(text, spec, first)
    else:
        yield from _delimited_batches(text, spec, first)


def _delimited_batches(text: io.TextIOWrapper, spec: CopySpec, first: int) -> Iterator[Batch]:
    delimiter, skip_blank = spec.field_delimiter, spec.ignore_blank_lines
    line_number = first - 1
    while True:
        lines = text.readlines(1 << 20)
        if not lines:
            return
        starts = list(range(line_number + 1, line_number + 1 + len(lines)))
        line_number += len(lines)
        if skip_blank and "\n" in lines:
            kept = [(n, line) for n, line in zip(starts, lines, strict=True) if line != "\n"]
            starts, lines = [n for n, _ in kept], [line for _, line in kept]
        stripped = [line[:-1] if line.endswith("\n") else line for line in lines]
        for begin in range(0, len(stripped), BATCH_RECORDS):
            chunk = stripped[begin : begin + BATCH_RECORDS]
            yield Batch(
                [line.split(delimiter) for line in chunk], starts[begin : begin + BATCH_RECORDS], chunk.__getitem__
            )


def _csv_batches(text: io.TextIOWrapper, spec: CopySpec, first: int) -> Iterator[Batch]:
    kept: list[str] = []  # lines since the start of the oldest record not yet handed out
    kept_first = first  # line number of kept[0]

    def lines() -> Iterator[str]:
        for line in text:
            kept.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=spec.field_delimiter, quotechar=spec.quote, doublequote=True, strict=False)
    skip_blank = spec.ignore_blank_lines
    done = False
    while not done:
        fields: list[list[str]] = []
        starts: list[int] = []
        ends: list[int] = []
        error: tuple[int, str] | None = None
        while len(fields) < BATCH_RECORDS:
            start = first + reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                done = True
                break
            except csv.Error as exc:
                error, done = (start, f"Invalid CSV input: {exc}"), True
                break
            if skip_blank and not row and not kept[first + reader.line_num - 1 - kept_first].rstrip("\r\n"):
                continue
            fields.append(row or [""])
            starts.append(start)
            ends.append(first + reader.line_num - 1)
        base = kept_first
        raw = functools.partial(_csv_raw, list(kept), base, starts, ends)
        if error is not None:
            start, reason = error
            raw_error = "".join(kept[start - base :]).rstrip("\r\n")
            fields.append(["\x00csv-error", reason, raw_error])  # marker handled by ``split_batch``
            starts.append(start)
            ends.append(start)
        if fields:
            yield Batch(fields, starts, raw)
        consumed = first + reader.line_num - kept_first
        del kept[:consumed]
        kept_first += consumed


def _csv_raw(lines: list[str], base: int, starts: list[int], ends: list[int], index: int) -> str:
    return "".join(lines[starts[index] - base : ends[index] - base + 1]).rstrip("\r\n")


def split_batch(batch: Batch, ncols: int, null_as: str, fill: bool) -> tuple[list[int], dict[int, Record]]:
    """Indexes of the regular records (``ncols`` fields), and a Record (values or a line-level error,
    as the per-record path makes it) for every other one."""
    regular: list[int] = []
    others: dict[int, Record] = {}
    for index, row in enumerate(batch.fields):
        if len(row) == ncols and not (row and row[0] == "\x00csv-error"):
            regular.append(index)
        elif row and row[0] == "\x00csv-error":
            others[index] = Record(batch.starts[index], row[2], error=(1216, row[1], 0))
        else:
            others[index] = _fit_columns(row, ncols, batch.starts[index], batch.raws(index), null_as, fill=fill)
    return regular, others


def _plain(column: Column, spec: CopySpec, values: list[str]) -> bool:
    """True when every value (none is None) would come out of the converter unchanged, or changed only in
    ways PostgreSQL reads the same ("007" for 7, "1.5" for numeric(5,2) 1.50)."""
    typname = column.typname
    joined = _SEP.join(values)
    if joined.count(_SEP) != len(values) - 1:
        return False
    if typname in _CHAR or typname == "bpchar":
        if spec.empty_as_null or spec.blanks_as_null or _INVALID_TEXT.search(joined):
            return False
        limit = column.length if typname != "bpchar" else (column.length or 1)
        if limit is None:
            return True
        if typname == "bpchar" and not joined.isascii():
            return False
        longest = max(map(len, values)) if joined.isascii() else max(map(len, map(str.encode, values)))
        return longest <= limit
    if typname in _INT_DIGITS:
        digits = _INT_DIGITS[typname]
        return re.fullmatch(rf"(?:-?\d{{1,{digits}}}\n)*-?\d{{1,{digits}}}", joined) is not None
    if typname == "numeric":
        if column.typmod > 4:
            precision, scale = ((column.typmod - 4) >> 16) & 0xFFFF, (column.typmod - 4) & 0xFFFF
            whole = rf"\d{{1,{precision - scale}}}" if precision > scale else "0"
            number = rf"-?{whole}(?:\.\d{{1,{scale}}})?" if scale else rf"-?{whole}"
            return re.fullmatch(rf"(?:{number}\n)*{number}", joined) is not None
        return re.fullmatch(r"(?:-?\d+(?:\.\d+)?\n)*-?\d+(?:\.\d+)?", joined) is not None
    if typname == "float8":
        return _PLAIN_FLOAT.fullmatch(joined) is not None
    if typname == "date" and (spec.date_format or "YYYY-MM-DD") == "YYYY-MM-DD":
        if _PLAIN_DATE.fullmatch(joined) is None:
            return False
        return _all_valid(date.fromisoformat, values)
    if typname == "timestamp" and (spec.time_format or "YYYY-MM-DD HH:MI:SS") == "YYYY-MM-DD HH:MI:SS":
        if _PLAIN_TS.fullmatch(joined) is None:
            return False
        return _all_valid(datetime.fromisoformat, values)
    return False


def _all_valid(parse: Callable[[str], object], values: list[str]) -> bool:
    try:
        for _ in map(parse, set(values)):
            pass
    except ValueError:
        return False
    return True


def convert_column(
    column: Column, convert: Converter, spec: CopySpec, values: list[str | None], errors: dict[int, tuple]
) -> list[str | None]:
    """The converted values of one column of a batch (regular records only, NULL AS already applied).

    A rejected value is recorded in ``errors`` as ``{position: (column, FieldError, raw value)}`` unless
    that record already failed in an earlier column (the per-record path stops at the first one).
    """
    is_char = column.typname in _CHAR or column.typname == "bpchar"
    nulls = None in values
    if not is_char and "" in values:
        values = [None if v == "" else v for v in values]  # an empty field is NULL for other types
        nulls = True
    present = [v for v in values if v is not None] if nulls else values
    if not (nulls and column.not_null) and present and _plain(column, spec, present):  # type: ignore[arg-type]
        return values
    if not present and not column.not_null:
        return values
    converted: dict[str | None, str | None] = {}
    failed: dict[str | None, FieldError] = {}
    for value in set(values):
        try:
            converted[value] = convert(value)
        except FieldError as exc:
            failed[value] = exc
    if not failed:
        return list(map(converted.__getitem__, values))
    out: list[str | None] = []
    for index, value in enumerate(values):
        if value in failed:
            errors.setdefault(index, (column, failed[value], value))
            out.append(None)
        else:
            out.append(converted[value])
    return out


def apply_null_as(columns: list[tuple], null_as: str) -> list[list[str | None]]:
    """Columns with the NULL AS string replaced by None."""
    return [[None if v == null_as else v for v in col] if null_as in col else list(col) for col in columns]


def csv_rows(rows: Iterator[tuple], delimiter: str = ",", quote: str = '"') -> str:
    """Rows as CSV for ``COPY FROM STDIN (FORMAT csv, DELIMITER, QUOTE)``: None unquoted (NULL), every
    value quoted."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quotechar=quote, quoting=csv.QUOTE_NOTNULL, lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue()


class Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``stream``, as one raw stream (to hand a partly read object on)."""

    def __init__(self, prefix: bytes, stream: io.BufferedIOBase) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._prefix:
            size = min(len(buffer), len(self._prefix))
            buffer[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# -- pass-through: chunks PostgreSQL's own COPY can parse with Redshift's result ------------------


class Passthrough:
    """Decides, chunk by chunk, whether a delimited text / CSV chunk can go to PostgreSQL's
    ``COPY ... FROM STDIN (FORMAT csv)`` unchanged and load exactly what Redshift loads.

    A chunk qualifies when every line is a record whose fields all have a form both read the same way:
    one bytes regular expression per column (digits within the type's range for integers, the declared
    precision and scale for DECIMAL, ``YYYY-MM-DD[ HH:MI:SS[.ffffff]]`` with valid ranges for DATE and
    TIMESTAMP with the default formats, at most ``n`` bytes without quote, delimiter, CR or NUL for
    CHAR/VARCHAR(n), ASCII for CHAR), no field equal to NULL AS, no empty unquoted field, valid UTF-8
    without noncharacters, and dates that exist in every year. Anything else (a rejected row, an empty field, CRLF
    line ends...) takes the Python path from that chunk on. ``None`` from ``build`` means never.
    """

    def __init__(
        self, rows: re.Pattern[bytes], strict: re.Pattern[bytes], null: bytes, delimiter: str, quote: str
    ) -> None:
        self.rows = rows  # without the NULL AS look-aheads: for chunks that do not hold NULL AS at all
        self.strict = strict
        self.null = null
        self.delimiter = delimiter  # the backend COPY's DELIMITER / QUOTE (NULL is the unquoted empty field)
        self.quote = quote

    @classmethod
    def build(cls, spec: CopySpec, targets: list[Column]) -> Passthrough | None:
        """The pass-through for ``spec`` and ``targets``, or None when a column or option rules it out."""
        delimiter = spec.field_delimiter
        if not eligible(spec) or spec.empty_as_null or spec.blanks_as_null or spec.truncate_columns:
            return None
        if spec.round_decimals or spec.fill_record or not (delimiter.isprintable() or delimiter == "\t"):
            return None
        if delimiter in '\\"\x01' or not delimiter.isascii():
            return None
        quote = spec.quote if spec.format == "CSV" else "\x01"
        if not quote.isascii() or quote == delimiter:
            return None
        d, q = re.escape(delimiter.encode()), re.escape(quote.encode())
        null = re.escape(spec.null_as.encode())
        fields, strict = [], []
        for column in targets:
            pattern = _column_pattern(column, spec, d, q)
            if pattern is None:
                return None
            nulls = null + (rb"|" + q + null + q if spec.format == "CSV" else b"")
            fields.append(pattern)
            strict.append(rb"(?!(?:" + nulls + rb")(?:" + d + rb"|\n))" + pattern)
        rows = re.compile(rb"(?:" + d.join(fields) + rb"\n)*+")
        strict_rows = re.compile(rb"(?:" + d.join(strict) + rb"\n)*+")
        return cls(rows, strict_rows, spec.null_as.encode(), delimiter, quote)

    def accepts(self, chunk: bytes) -> bool:
        """True when ``chunk`` (whole lines) can be sent to PostgreSQL's COPY as it is."""
        rows = self.strict if (not self.null or self.null in chunk) else self.rows
        if rows.fullmatch(chunk) is None:
            return False
        if not chunk.isascii():
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return False
            if _NONCHARACTER_BYTES.search(chunk):
                return False
        return True


_NONCHARACTER_BYTES = re.compile(rb"\xef\xb7[\x90-\xaf]|\xef\xbf[\xbe\xbf]|[\xf0-\xf4][\x8f\x9f\xaf\xbf]\xbf[\xbe\xbf]")
# Only dates that exist in every year (February 29 takes the Python path), year 0 excluded.
_DATE_RE = (
    rb"(?!0000)\d{4}-(?>(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_TIME_RE = rb" (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6}+)?+"


def _column_pattern(column: Column, spec: CopySpec, d: bytes, q: bytes) -> bytes | None:
    """The bytes regex of one field PostgreSQL reads as the converter would, or None."""
    typname = column.typname
    csv_format = spec.format == "CSV"

    def either(value: bytes) -> bytes:  # unquoted, or (CSV) quoted without anything to unquote
        return rb"(?>" + value + (rb"|" + q + value + q if csv_format else b"") + rb")"

    if typname in _INT_DIGITS:
        return either(rb"-?\d{1,%d}+" % _INT_DIGITS[typname])
    if typname == "numeric" and column.typmod > 4:
        precision, scale = ((column.typmod - 4) >> 16) & 0xFFFF, (column.typmod - 4) & 0xFFFF
        whole = rb"\d{1,%d}+" % (precision - scale) if precision > scale else b"0"
        return either(rb"-?" + whole + (rb"(?:\.\d{1,%d}+)?+" % scale if scale else b""))
    if typname == "float8":
        return either(rb"-?\d{1,15}+(?:\.\d{1,17}+)?+")
    if typname == "date" and (spec.date_format or "YYYY-MM-DD") == "YYYY-MM-DD":
        return either(_DATE_RE)
    if typname == "timestamp" and (spec.time_format or "YYYY-MM-DD HH:MI:SS") == "YYYY-MM-DD HH:MI:SS":
        return either(_DATE_RE + _TIME_RE)  # the default TIMEFORMAT needs the time
    if typname in _CHAR or typname == "bpchar":
        limit = column.length if typname != "bpchar" else (column.length or 1)
        span = rb"{1,%d}+" % limit if limit else rb"++"
        excluded = d + q + rb"\n\r\x00\\" + (rb"\x80-\xff" if typname == "bpchar" else b"")
        unquoted = rb"[^" + excluded + rb"]" + span
        if not csv_format:
            return unquoted
        quoted = q + rb"[^" + q + rb"\n\r\x00\\" + (rb"\x80-\xff" if typname == "bpchar" else b"") + rb"]"
        return rb"(?>" + quoted + (rb"{0,%d}+" % limit if limit else rb"*+") + q + rb"|" + unquoted + rb")"
    return None
