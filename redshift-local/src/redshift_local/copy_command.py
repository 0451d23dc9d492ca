"""Parse Redshift's ``COPY table [(columns)] FROM 's3://...' [options]`` into a ``CopySpec``.

Option names and meanings follow the AWS "COPY parameter reference" (data source, authorization,
data format, file compression, data conversion and data load parameters). Every option not listed
in ``CopySpec`` is refused with ``UnsupportedCopyOption`` naming it; nothing is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redshift_local.sqltext import Token, ident_value, significant, tokenize, unquote_string


class CopySyntaxError(ValueError):
    """The COPY statement is malformed (SQLSTATE 42601)."""


class UnsupportedCopyOption(ValueError):
    """The COPY statement uses a Redshift option the stand-in does not implement (SQLSTATE 0A000)."""


@dataclass
class CopySpec:
    """What a COPY asks for. Defaults are Redshift's (COPY parameter reference)."""

    table: str  # as written, e.g. ``public.category`` or ``"Cat"``: safe to embed in SQL
    table_name: str  # unquoted last part, for messages ("Load into table 'x' failed")
    columns: list[str] | None
    source: str
    format: str = "TEXT"  # TEXT, CSV, JSON, PARQUET or ORC
    delimiter: str | None = None
    quote: str = '"'
    json_paths: str | None = None  # 'auto', 'auto ignorecase' or an s3:// JSONPaths file
    compression: str | None = None  # GZIP, BZIP2 or ZSTD
    ignore_header: int = 0
    null_as: str = "\\N"
    empty_as_null: bool = False
    blanks_as_null: bool = False
    date_format: str | None = None
    time_format: str | None = None
    accept_inv_chars: str | None = None
    truncate_columns: bool = False
    max_error: int = 0
    manifest: bool = False
    region: str | None = None
    escape: bool = False
    explicit_ids: bool = False
    fixed_width: list[tuple[str, int]] | None = None  # FIXEDWIDTH 'label:width,...'
    remove_quotes: bool = False
    fill_record: bool = False
    ignore_blank_lines: bool = False
    encoding: str = "UTF8"  # UTF8, UTF16, UTF16LE or UTF16BE
    round_decimals: bool = False  # ROUNDEC
    serialize_to_json: bool = False  # SERIALIZETOJSON (Parquet/ORC nested columns)
    no_op_options: list[str] = field(default_factory=list)

    @property
    def field_delimiter(self) -> str:
        """DELIMITER, else ``,`` for CSV and ``|`` for text (COPY data format parameters)."""
        if self.delimiter is not None:
            return self.delimiter
        return "," if self.format == "CSV" else "|"


_FLAGS = {
    "GZIP": ("compression", "GZIP"),
    "BZIP2": ("compression", "BZIP2"),
    "ZSTD": ("compression", "ZSTD"),
    "EMPTYASNULL": ("empty_as_null", True),
    "BLANKSASNULL": ("blanks_as_null", True),
    "TRUNCATECOLUMNS": ("truncate_columns", True),
    "MANIFEST": ("manifest", True),
    "ESCAPE": ("escape", True),
    "EXPLICIT_IDS": ("explicit_ids", True),
    "REMOVEQUOTES": ("remove_quotes", True),
    "FILLRECORD": ("fill_record", True),
    "IGNOREBLANKLINES": ("ignore_blank_lines", True),
    "ROUNDEC": ("round_decimals", True),
    "SERIALIZETOJSON": ("serialize_to_json", True),
}
_ENCODINGS = {"UTF8", "UTF16", "UTF16LE", "UTF16BE"}
_COLUMNAR = ("PARQUET", "ORC")
# Options whose only effect in Redshift is on compression encodings / planner statistics, which do
# not exist here. They are accepted and reported in the log (not silently dropped).
_NO_OP_WITH_VALUE = {"COMPUPDATE", "STATUPDATE"}


class _Cursor:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise CopySyntaxError("syntax error at end of COPY statement")
        self.pos += 1
        return token

    def accept(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.upper in words:
            self.pos += 1
            return True
        return False

    def expect_op(self, text: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != text:
            raise CopySyntaxError(f'syntax error at or near "{token.text}" (expected "{text}")')

    def string(self, option: str) -> str:
        self.accept("AS")
        token = self.take()
        if token.kind != "string":
            raise CopySyntaxError(f"{option} expects a quoted string, got {token.text!r}")
        return unquote_string(token.text)

    def integer(self, option: str) -> int:
        self.accept("AS")
        token = self.take()
        text = unquote_string(token.text) if token.kind == "string" else token.text
        if not text.isdigit():
            raise CopySyntaxError(f"{option} expects a non-negative integer, got {token.text!r}")
        return int(text)


def _delimiter_value(text: str) -> str:
    """Interpret ``'\\t'`` and friends as Redshift does for DELIMITER (COPY data format parameters)."""
    escapes = {"\\t": "\t", "\\n": "\n", "\\|": "|", "\\\\": "\\"}
    value = escapes.get(text, text)
    if len(value) == 4 and value.startswith("\\0"):  # octal such as '\001'
        value = chr(int(value[1:], 8))
    if len(value) != 1:
        raise CopySyntaxError(f"DELIMITER must be a single character, got {text!r}")
    return value


def parse_copy(sql: str) -> CopySpec:
    """Parse a ``COPY ... FROM 's3://...'`` statement.

    Input: the statement text (no trailing ``;`` needed). Output: a ``CopySpec``.
    Raises ``CopySyntaxError`` for malformed text and ``UnsupportedCopyOption`` (naming the option)
    for Redshift options the stand-in does not implement, e.g. AVRO, LZOP.
    """
    cur = _Cursor(significant(tokenize(sql)))
    if not cur.accept("COPY"):
        raise CopySyntaxError("not a COPY statement")
    name_tokens: list[Token] = []
    while True:
        token = cur.take()
        if token.kind not in ("word", "qident"):
            raise CopySyntaxError(f'syntax error at or near "{token.text}" (expected a table name)')
        name_tokens.append(token)
        nxt = cur.peek()
        if nxt is not None and nxt.kind == "op" and nxt.text == ".":
            cur.take()
            continue
        break
    table = ".".join(t.text for t in name_tokens)
    columns = None
    nxt = cur.peek()
    if nxt is not None and nxt.kind == "op" and nxt.text == "(":
        cur.take()
        columns = []
        while True:
            token = cur.take()
            if token.kind not in ("word", "qident"):
                raise CopySyntaxError(f'syntax error at or near "{token.text}" in the column list')
            columns.append(ident_value(token))
            sep = cur.take()
            if sep.text == ")":
                break
            if sep.text != ",":
                raise CopySyntaxError(f'syntax error at or near "{sep.text}" in the column list')
    if not cur.accept("FROM"):
        raise CopySyntaxError("COPY expects FROM 's3://bucket/key'")
    source_token = cur.take()
    if source_token.kind != "string":
        raise CopySyntaxError("COPY FROM expects a quoted data source")
    spec = CopySpec(
        table=table,
        table_name=ident_value(name_tokens[-1]),
        columns=columns,
        source=unquote_string(source_token.text),
    )
    _parse_options(cur, spec)
    if spec.format == "JSON" and spec.json_paths is None:
        raise CopySyntaxError("JSON requires 'auto', 'auto ignorecase' or an s3:// JSONPaths file")
    if spec.format != "CSV" and spec.quote != '"':
        raise CopySyntaxError("QUOTE AS is only valid with CSV")
    _check_combinations(spec)
    return spec


def _check_combinations(spec: CopySpec) -> None:
    """Option combinations Redshift refuses (COPY parameter reference, each option's "usage notes")."""
    if spec.fixed_width is not None and (spec.format != "TEXT" or spec.delimiter is not None):
        raise CopySyntaxError("FIXEDWIDTH cannot be used with CSV, JSON, a columnar format or DELIMITER")
    if spec.remove_quotes and spec.format != "TEXT":
        raise CopySyntaxError("REMOVEQUOTES cannot be used with CSV, JSON or a columnar format")
    if spec.format in _COLUMNAR:
        allowed_flags = {"manifest", "serialize_to_json", "explicit_ids"}
        refused = [
            word
            for word, (attr, _value) in _FLAGS.items()
            if attr not in allowed_flags and getattr(spec, attr) not in (None, False)
        ]
        if spec.compression or spec.ignore_header or spec.delimiter or spec.date_format or spec.time_format:
            refused.append("a text-format option")
        if refused:
            raise CopySyntaxError(
                f"FORMAT AS {spec.format} cannot be used with {', '.join(sorted(set(refused)))}"
                " (columnar files carry their own types and compression)"
            )
    elif spec.serialize_to_json:
        raise CopySyntaxError("SERIALIZETOJSON is only valid with FORMAT AS PARQUET or ORC")


def _fixed_width(text: str) -> list[tuple[str, int]]:
    """``'label:width,...'`` -> ``[(label, width), ...]`` (COPY data format parameters, FIXEDWIDTH)."""
    columns = []
    for part in text.split(","):
        label, sep, width = part.strip().rpartition(":")
        if not sep or not label.strip() or not width.strip().isdigit() or int(width) == 0:
            raise CopySyntaxError(f"Invalid FIXEDWIDTH specification {text!r}: expected 'label:width,...'")
        columns.append((label.strip(), int(width)))
    return columns


def _parse_options(cur: _Cursor, spec: CopySpec) -> None:
    while cur.peek() is not None:
        token = cur.take()
        if token.kind == "op" and token.text == ";":
            continue
        if token.kind != "word":
            raise CopySyntaxError(f'syntax error at or near "{token.text}"')
        word = token.upper
        if word == "WITH":
            continue
        if word in _FLAGS:
            attr, value = _FLAGS[word]
            setattr(spec, attr, value)
        elif word == "IAM_ROLE":
            if not cur.accept("DEFAULT"):
                cur.string("IAM_ROLE")
        elif word in ("CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
            cur.string(word)  # accepted, never checked, never logged
        elif word == "REGION":
            spec.region = cur.string("REGION")
        elif word == "FORMAT":
            cur.accept("AS")
            fmt = cur.take()
            _set_format(cur, spec, fmt.upper)
        elif word in ("CSV", "JSON", *_COLUMNAR):
            _set_format(cur, spec, word)
        elif word == "QUOTE":
            spec.quote = cur.string("QUOTE")
            if len(spec.quote) != 1:
                raise CopySyntaxError("QUOTE AS must be a single character")
        elif word == "DELIMITER":
            spec.delimiter = _delimiter_value(cur.string("DELIMITER"))
        elif word == "IGNOREHEADER":
            spec.ignore_header = cur.integer("IGNOREHEADER")
        elif word == "NULL":
            spec.null_as = cur.string("NULL AS")
            if spec.null_as in ("\\0", "\\000"):  # NUL terminator (COPY data conversion parameters)
                spec.null_as = "\x00"
        elif word == "DATEFORMAT":
            spec.date_format = cur.string("DATEFORMAT")
        elif word == "TIMEFORMAT":
            spec.time_format = cur.string("TIMEFORMAT")
        elif word == "ACCEPTINVCHARS":
            spec.accept_inv_chars = "?"
            if cur.accept("AS") or (cur.peek() is not None and cur.peek().kind == "string"):
                spec.accept_inv_chars = cur.string("ACCEPTINVCHARS")
        elif word == "MAXERROR":
            spec.max_error = cur.integer("MAXERROR")
        elif word == "FIXEDWIDTH":
            spec.fixed_width = _fixed_width(cur.string("FIXEDWIDTH"))
        elif word == "ENCODING":
            cur.accept("AS")
            token = cur.take()
            encoding = (unquote_string(token.text) if token.kind == "string" else token.text).upper()
            if encoding not in _ENCODINGS:
                raise CopySyntaxError(f"ENCODING must be one of {', '.join(sorted(_ENCODINGS))}, not {encoding!r}")
            spec.encoding = encoding
        elif word == "LZOP":
            raise UnsupportedCopyOption(
                "COPY option LZOP is not supported by the local Redshift stand-in: no maintained Python reader"
                " of the lzop container exists (python-lzo only handles raw LZO blocks); use GZIP, BZIP2 or ZSTD"
            )
        elif word in _NO_OP_WITH_VALUE:
            value = cur.peek()
            if value is not None and value.kind == "word" and value.upper in ("ON", "OFF", "TRUE", "FALSE", "PRESET"):
                cur.take()
            spec.no_op_options.append(word)
        else:
            raise UnsupportedCopyOption(f"COPY option {word} is not supported by the local Redshift stand-in")


def _set_format(cur: _Cursor, spec: CopySpec, word: str) -> None:
    if word == "CSV":
        spec.format = "CSV"
        if cur.accept("QUOTE"):
            spec.quote = cur.string("QUOTE")
    elif word == "JSON":
        spec.format = "JSON"
        nxt = cur.peek()
        if cur.accept("AS") or (nxt is not None and nxt.kind == "string"):
            value = cur.string("JSON")
            spec.json_paths = value if value.lower().startswith("s3://") else value.lower().strip()
            if spec.json_paths not in ("auto", "auto ignorecase") and not value.lower().startswith("s3://"):
                raise UnsupportedCopyOption(f"JSON {value!r} is not supported (use 'auto', 'auto ignorecase' or s3://)")
        else:
            spec.json_paths = "auto"  # FORMAT JSON without an argument means 'auto'
    elif word in _COLUMNAR:
        spec.format = word
    else:
        raise UnsupportedCopyOption(f"COPY option FORMAT {word} is not supported by the local Redshift stand-in")
