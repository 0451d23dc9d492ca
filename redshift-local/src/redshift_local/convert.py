"""Per-column validation and conversion of COPY input fields, the way Redshift judges them.

Each target column gets a converter: ``str | None -> str | None`` (the value PostgreSQL receives,
None for NULL) that raises ``FieldError`` carrying the Redshift load error code (AWS "Load error
reference": 1204 too long/out of range, 1205 date, 1206 timestamp, 1207 invalid digit, 1208 float,
1209 decimal, 1210 boolean, 1213 NOT NULL, 1220 invalid UTF-8) and an ``err_reason`` worded like
STL_LOAD_ERRORS. Rules from the AWS "COPY parameter reference" (data conversion parameters):
empty fields load as NULL for non-character types; EMPTYASNULL / BLANKSASNULL for CHAR/VARCHAR;
VARCHAR(n)/CHAR(n) lengths are in bytes; TRUNCATECOLUMNS cuts to the column width; CHAR accepts only
single-byte characters; ACCEPTINVCHARS replaces each invalid UTF-8 byte in VARCHAR with one
replacement character; extra decimal places are truncated unless ROUNDEC (then rounded half up).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from redshift_local.copy_command import CopySpec


class FieldError(Exception):
    """A field that cannot be loaded: ``code`` (Redshift load error code), ``reason``, ``position``."""

    def __init__(self, code: int, reason: str, position: int = 0) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.position = position


@dataclass(frozen=True)
class Column:
    """A target column as read from ``pg_attribute``."""

    name: str
    typname: str  # pg_type.typname: int4, varchar, bpchar, numeric, timestamptz, ...
    typmod: int
    not_null: bool
    identity: bool = False

    @property
    def redshift_type(self) -> str:
        """The type name STL_LOAD_ERRORS shows (``type`` column, character(10))."""
        return {"bpchar": "char", "jsonb": "super"}.get(self.typname, self.typname)

    @property
    def length(self) -> int | None:
        """Declared length of CHAR/VARCHAR columns (bytes in Redshift), else None."""
        if self.typname in ("varchar", "bpchar") and self.typmod > 4:
            return self.typmod - 4
        return None

    @property
    def col_length(self) -> str:
        """``col_length`` of STL_LOAD_ERRORS: "n" for CHAR(n)/VARCHAR(n), "p,s" for DECIMAL(p,s)."""
        if self.length is not None:
            return str(self.length)
        if self.typname == "numeric" and self.typmod > 4:
            return f"{((self.typmod - 4) >> 16) & 0xFFFF},{(self.typmod - 4) & 0xFFFF}"
        return ""


Converter = Callable[[str | None], str | None]

_INT_LIMITS = {"int2": (16, "Short"), "int4": (32, "Integer"), "int8": (64, "Long")}
_CHAR_TYPES = {"varchar", "bpchar", "text", "name"}
_TRUE = {"t", "true", "y", "yes", "1"}
_FALSE = {"f", "false", "n", "no", "0"}
_INVALID_UTF8 = re.compile("[\udc80-\udcff]")
_NONCHARACTERS = re.compile("[\x00\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0001ffff\U0010fffe\U0010ffff]")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")

# Redshift datetime format elements (Datetime format strings) mapped to strptime directives.
_FORMAT_ELEMENTS = re.compile(r"YYYY|YY|MONTH|MON|MM|DDD|DD|DAY|DY|HH24|HH12|HH|MI|SS|AM|PM|A\.M\.|P\.M\.")
_ELEMENT_DIRECTIVES = {
    "YYYY": "%Y", "YY": "%y", "MONTH": "%B", "MON": "%b", "MM": "%m", "DDD": "%j", "DD": "%d",
    "DAY": "%A", "DY": "%a", "HH24": "%H", "HH12": "%I", "HH": "%H", "MI": "%M", "SS": "%S",
    "AM": "%p", "PM": "%p", "A.M.": "%p", "P.M.": "%p",
}  # fmt: skip


def redshift_to_strptime(fmt: str) -> str:
    """Translate a Redshift DATEFORMAT/TIMEFORMAT string (``YYYY-MM-DD HH:MI:SS``) for ``strptime``."""
    twelve_hour = bool(re.search(r"AM|PM|A\.M\.|P\.M\.|HH12", fmt))
    out, pos = [], 0
    for match in _FORMAT_ELEMENTS.finditer(fmt):
        out.append(fmt[pos : match.start()].replace("%", "%%"))
        element = match.group()
        out.append("%I" if element == "HH" and twelve_hour else _ELEMENT_DIRECTIVES[element])
        pos = match.end()
    out.append(fmt[pos:].replace("%", "%%"))
    return "".join(out)


class DateTimeParser:
    """Parses dates/timestamps per DATEFORMAT/TIMEFORMAT ('auto', a pattern, 'epochsecs', 'epochmillisecs')."""

    def __init__(self, fmt: str | None, default: str) -> None:
        self.fmt = fmt
        self.patterns: list[str] = []
        if fmt is None:
            base = redshift_to_strptime(default)
            self.patterns = [base, base.replace("%S", "%S.%f")] if "%S" in base else [base]
        elif fmt.lower() not in ("auto", "epochsecs", "epochmillisecs"):
            base = redshift_to_strptime(fmt)
            self.patterns = [base, base.replace("%S", "%S.%f")] if "%S" in base else [base]

    def parse(self, text: str) -> datetime:
        """Return a datetime (naive unless the input had an offset). Raises ValueError."""
        value = text.strip()
        kind = (self.fmt or "").lower()
        if kind in ("epochsecs", "epochmillisecs"):
            number = Decimal(value)
            seconds = number / 1000 if kind == "epochmillisecs" else number
            return datetime.fromtimestamp(float(seconds), UTC).replace(tzinfo=None)
        for pattern in self.patterns:
            try:
                return datetime.strptime(value, pattern)
            except ValueError:
                continue
        raise ValueError(text)


class PgInput:
    """PostgreSQL's own input functions, asked on a separate connection, for what Redshift inherited
    from PostgreSQL 8: DATEFORMAT/TIMEFORMAT 'auto' (AWS "Using automatic recognition with DATEFORMAT
    and TIMEFORMAT": ISO 8601, Julian ``J2451187``, ``Jan-08-95 BC``, ``YYYYMMDD HHMISS``, ``YYYY.DDD``,
    zone names and offsets... are PostgreSQL's datetime input) and the types the converter has no rule
    for (time, timetz, interval, uuid, ...), so a bad value rejects its row instead of failing the COPY.

    ``cursor`` returns a psycopg2 cursor on an autocommit connection that is not the client's.
    Answers are cached per value (bounded). Raises psycopg2 errors if that connection fails.
    """

    # PostgreSQL's special datetime words, which Redshift's 'auto' does not document.
    _SPECIAL = {"now", "today", "tomorrow", "yesterday", "epoch", "infinity", "-infinity", "+infinity", "allballs"}
    _AUTO_SQL = {
        "date": "%s::timestamp::date::text",
        "timestamp": "(%s::timestamptz AT TIME ZONE 'UTC')::text",
        "timestamptz": "%s::timestamptz::text",
    }
    _CACHE_LIMIT = 100_000

    def __init__(self, cursor: Callable[[], Any]) -> None:
        self._cursor = cursor
        self._cache: dict[tuple[str, str, str], str | None] = {}
        self._ready = False

    def _ask(self, key: tuple[str, str, str], sql: str, params: tuple) -> str | None:
        if key not in self._cache:
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            with self._cursor() as cur:
                if not self._ready:
                    cur.execute("SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'")
                    self._ready = True
                cur.execute(sql, params)
                self._cache[key] = cur.fetchone()[0]
        return self._cache[key]

    def input_error(self, value: str, type_name: str) -> str | None:
        """PostgreSQL's message if ``value`` is not valid input for ``type_name``, else None."""
        sql = "SELECT (pg_input_error_info(%s, %s)).message"
        return self._ask(("check", type_name, value), sql, (value, type_name))

    def auto_datetime(self, value: str, typname: str) -> str | None:
        """``value`` read as 'auto' for a date/timestamp/timestamptz column: canonical ISO text, or None."""
        text = value.strip()
        if text.lower() in self._SPECIAL or not text:
            return None
        key = ("auto", typname, text)
        if key in self._cache:
            return self._cache[key]
        # Two statements: a CASE would be constant-folded, casting an invalid literal anyway.
        if self.input_error(text, "timestamptz") is not None:
            self._cache[key] = None
            return None
        return self._ask(key, f"SELECT {self._AUTO_SQL[typname]}", (text,))


@dataclass(frozen=True)
class _Rules:
    empty_as_null: bool
    blanks_as_null: bool
    truncate: bool
    accept_inv_chars: str | None
    date_parser: DateTimeParser
    time_parser: DateTimeParser


def _first_invalid(text: str, valid: Callable[[int, str], bool]) -> tuple[str, int]:
    for index, char in enumerate(text):
        if not valid(index, char):
            return char, index
    return text[:1], 0


def _hex(text: str) -> str:
    return " ".join(f"{ord(c) - 0xDC00:02x}" for c in _INVALID_UTF8.findall(text))


def _cut_bytes(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def make_converter(
    column: Column,
    spec: CopySpec,
    pg_input: PgInput | None = None,
    on_replace: Callable[[Column], None] | None = None,
) -> Converter:
    """Build the converter for ``column`` under the options of ``spec``. See the module docstring.

    ``pg_input`` is needed for DATEFORMAT/TIMEFORMAT 'auto' and for types without a rule here
    (time, interval, uuid, ...); without it those values go to PostgreSQL unchecked. ``on_replace``
    is called with the column when ACCEPTINVCHARS replaced a character (for STL_REPLACEMENTS)."""
    rules = _Rules(
        spec.empty_as_null,
        spec.blanks_as_null,
        spec.truncate_columns,
        spec.accept_inv_chars,
        DateTimeParser(spec.date_format, "YYYY-MM-DD"),
        DateTimeParser(spec.time_format, "YYYY-MM-DD HH:MI:SS"),
    )
    typname = column.typname
    is_char = typname in _CHAR_TYPES

    def convert(value: str | None) -> str | None:
        if value is not None:
            if is_char:
                if (value == "" and rules.empty_as_null) or (rules.blanks_as_null and value and not value.strip(" ")):
                    value = None
            elif not value.strip():
                value = None
        if value is None:
            if column.not_null:
                raise FieldError(1213, "Missing data for not-null field")
            return None
        return typed(value)

    if typname in _INT_LIMITS:
        bits, label = _INT_LIMITS[typname]
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

        def typed(value: str) -> str:
            text = value.strip()
            if not re.fullmatch(r"[+-]?\d+", text):
                char, pos = _first_invalid(text, lambda i, c: c.isdigit() or (i == 0 and c in "+-"))
                raise FieldError(1207, f"Invalid digit, Value '{char}', Pos {pos}, Type: {label}", pos)
            number = int(text)
            if not low <= number <= high:
                raise FieldError(1204, f"Overflow, Value '{text}' exceeds the range of type {label}")
            return str(number)

    elif typname == "numeric":
        precision = ((column.typmod - 4) >> 16) & 0xFFFF if column.typmod > 4 else None
        scale = (column.typmod - 4) & 0xFFFF if column.typmod > 4 else 0
        rounding = ROUND_HALF_UP if spec.round_decimals else ROUND_DOWN  # ROUNDEC

        def typed(value: str) -> str:
            text = value.strip()
            if not _DECIMAL_RE.fullmatch(text):
                char, pos = _first_invalid(text, lambda i, c: c.isdigit() or c == "." or (i == 0 and c in "+-"))
                raise FieldError(1207, f"Invalid digit, Value '{char}', Pos {pos}, Type: Decimal", pos)
            number = Decimal(text)
            if precision is None:
                return str(number)
            number = number.quantize(Decimal(1).scaleb(-scale), rounding=rounding)
            whole = abs(number).to_integral_value(rounding=ROUND_DOWN)
            if whole and len(str(whole)) > precision - scale:
                raise FieldError(1204, f"Numeric data overflow (result precision), Value '{text}'")
            return str(number)

    elif typname in ("float4", "float8"):

        def typed(value: str) -> str:
            try:
                return repr(float(value.strip()))
            except ValueError:
                raise FieldError(1208, f"Invalid digit, Value '{value[:20]}', Type: Float") from None

    elif typname == "bool":

        def typed(value: str) -> str:
            text = value.strip().lower()
            if text in _TRUE:
                return "t"
            if text in _FALSE:
                return "f"
            raise FieldError(1210, f"Invalid boolean value: '{value[:20]}'")

    elif (
        typname in ("date", "timestamp", "timestamptz")
        and pg_input is not None
        and ((spec.date_format if typname == "date" else spec.time_format) or "").lower() == "auto"
    ):
        code, what = (1205, "Invalid Date Format") if typname == "date" else (1206, "Invalid timestamp format")

        def typed(value: str) -> str:
            parsed = pg_input.auto_datetime(value, typname)
            if parsed is None:
                raise FieldError(code, f"{what} - value '{value[:40]}' is not recognised by 'auto'")
            return parsed

    elif typname == "date":

        def typed(value: str) -> str:
            try:
                parsed = rules.date_parser.parse(value)
            except (ValueError, InvalidOperation, OverflowError):
                raise FieldError(
                    1205, f"Invalid Date Format - value '{value[:40]}' does not match DATEFORMAT"
                ) from None
            return parsed.date().isoformat() if isinstance(parsed, datetime) else date.isoformat(parsed)

    elif typname in ("timestamp", "timestamptz"):

        def typed(value: str) -> str:
            try:
                parsed = rules.time_parser.parse(value)
            except (ValueError, InvalidOperation, OverflowError):
                raise FieldError(1206, f"Invalid timestamp format or value '{value[:40]}'") from None
            if typname == "timestamptz" and parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            if typname == "timestamp" and parsed.tzinfo is not None:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            return parsed.isoformat(sep=" ")

    elif typname == "bpchar":
        limit = column.length or 1

        def typed(value: str) -> str:
            if _INVALID_UTF8.search(value):
                raise FieldError(
                    1220,
                    f"String contains invalid or unsupported UTF8 codepoints. Bad UTF8 hex sequence: {_hex(value)}",
                )
            wide = next((c for c in value if ord(c) > 127), None)
            if wide is not None:
                raise FieldError(
                    1220,
                    "Multibyte character not supported for CHAR (Hint: Try using VARCHAR). "
                    f"Invalid char: {wide.encode('utf-8').hex(' ')}",
                )
            trimmed = value.rstrip(" ")
            if len(trimmed) > limit:
                if not rules.truncate:
                    raise FieldError(1204, f"Char length exceeds DDL length ({len(trimmed)} > {limit})")
                trimmed = trimmed[:limit]
            return trimmed

    elif is_char:
        limit = column.length

        def typed(value: str) -> str:
            if _INVALID_UTF8.search(value) or _NONCHARACTERS.search(value):
                if rules.accept_inv_chars is None and _INVALID_UTF8.search(value):
                    raise FieldError(
                        1220,
                        "String contains invalid or unsupported UTF8 codepoints. "
                        f"Bad UTF8 hex sequence: {_hex(value)} (error 3)",
                    )
                if rules.accept_inv_chars is None and "\x00" in value:
                    raise FieldError(1220, "String contains invalid or unsupported UTF8 codepoints: NUL (0x00)")
                if rules.accept_inv_chars is not None:
                    repl = rules.accept_inv_chars
                    value = _INVALID_UTF8.sub(repl, value)
                    value = _NONCHARACTERS.sub(lambda m: repl * len(m.group().encode("utf-8")), value)
                    if on_replace is not None:
                        on_replace(column)
            if limit is not None:
                size = len(value.encode("utf-8"))
                if size > limit:
                    if not rules.truncate:
                        raise FieldError(1204, f"String length exceeds DDL length ({size} > {limit} bytes)")
                    value = _cut_bytes(value, limit)
            return value

    elif typname in ("jsonb", "json"):

        def typed(value: str) -> str:
            if _INVALID_UTF8.search(value) or "\x00" in value:
                raise FieldError(1220, "String contains invalid or unsupported UTF8 codepoints")
            try:
                json.loads(value)
                return value
            except ValueError:
                return json.dumps(value)  # a plain string becomes a SUPER string

    else:
        code = 1206 if typname in ("time", "timetz") else 1200

        def typed(value: str) -> str:
            if _INVALID_UTF8.search(value) or "\x00" in value:
                raise FieldError(1220, "String contains invalid or unsupported UTF8 codepoints")
            if pg_input is not None:  # other types: PostgreSQL's own input function judges the value
                message = pg_input.input_error(value, typname)
                if message is not None:
                    raise FieldError(code, f"Invalid {column.redshift_type} value '{value[:40]}': {message}"[:100])
            return value

    return convert
