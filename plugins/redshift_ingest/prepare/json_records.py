"""Turn one JSON document holding an array of records into newline-delimited JSON, streaming.

COPY with ``JSON 'auto'`` reads a stream of JSON objects (or arrays, with JSONPaths), one record
each; a single top-level array would be read as one record, and an envelope such as CloudTrail's
``{"Records": [...]}`` as one row (AWS, COPY from JSON format). ``ijson`` yields the array's items
one at a time, so memory stays at one record plus the parser's buffer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import replace

import ijson

from .columns import compare, fold
from .model import FileRejected, PrepareSpec
from .sniff import ByteReader
from .text import Utf8Reader

#: JSON's own names for the values ``ijson`` yields (RFC 8259 section 3), for error messages.
_JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
}


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type: ``null``, ``boolean``, ``number``, ``string``, ``array``, ``object``."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _line(record: object) -> bytes:
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes: keep them escaped
        return json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n"


def write_ndjson(utf8: ByteReader, prefix: str, write: Callable[[bytes], None]) -> int:
    """Stream the items at ``prefix`` out as one compact JSON value per line.

    :param utf8: the document as a UTF-8 byte stream.
    :param prefix: an ``ijson`` prefix: ``"item"`` for a top-level array, ``"Records.item"`` for
        the array under key ``Records`` of a top-level object.
    :param write: called with each line (UTF-8 bytes ending in ``\\n``).
    :returns: the number of records written (>= 1).
    :raises FileRejected: invalid JSON (a bad escape in a string too), an item that is not an object
        or array, or no records; the message starts with the record's number. Non-integer numbers
        are written as floats (``use_float=True``; shortest round-trip repr).
    """
    count = 0
    try:
        for record in ijson.items(utf8, prefix, use_float=True):
            if not isinstance(record, dict | list):
                raise FileRejected(
                    f"record {count + 1}: expected a JSON object or array, found {json_type(record)} "
                    f"{json.dumps(record, ensure_ascii=False)[:40]}"
                )
            write(_line(record))
            count += 1
    except ijson.JSONError as exc:
        detail = exc.args[0] if exc.args else exc
        detail = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        detail = detail.split("\n", 1)[0].strip()[:200]
        raise FileRejected(f"record {count + 1}: invalid JSON: {detail}") from None
    except UnicodeDecodeError as exc:  # an escape that is no character, e.g. a lone surrogate "\udc00"
        raise FileRejected(
            f"record {count + 1}: invalid JSON string: an escape sequence that is no Unicode character "
            f"({exc.reason}; a \\uD800-\\uDFFF escape must be half of a surrogate pair)"
        ) from None
    except RecursionError:
        raise FileRejected(f"record {count + 1}: JSON nested too deeply to load") from None
    if count == 0:
        where = "the top-level array" if prefix == "item" else f"key {prefix.removesuffix('.item')!r}"
        raise FileRejected(f"expected records in {where}, found none")
    return count


_SCALAR_EVENTS = frozenset({"null", "boolean", "integer", "double", "number", "string"})


def arrays_are_rows(chunks: Iterator[str]) -> tuple[bool, Iterator[str]]:
    """Whether text starting with ``[`` is newline-delimited JSON arrays (one row per array, loaded
    with a JSONPaths file: AWS COPY examples, "Load from JSON arrays using a JSONPaths file"), not
    one top-level array of records.

    Decided by the first item of the first array: a scalar (``[1,"Sports",...]``) means the array is
    a row; an object or array means it is an array of records. Only the text up to that item is read.

    :param chunks: the decoded text, its first non-space character ``[``.
    :returns: ``(rows?, the same text as an iterator)``; invalid JSON answers False (the records
        path reports it).
    """
    seen: list[str] = []

    def pulled() -> Iterator[str]:
        for chunk in chunks:
            seen.append(chunk)
            yield chunk

    rows = False
    with contextlib.suppress(ijson.JSONError, UnicodeDecodeError, StopIteration):
        events = ijson.parse(Utf8Reader(pulled()), multiple_values=True)
        next(events)  # the opening "["
        rows = next(events)[1] in _SCALAR_EVENTS
    return rows, itertools.chain(seen, chunks)


def first_record_keys(chunks: Iterator[str], prefix: str) -> tuple[tuple[str, ...] | None, Iterator[str]]:
    """The top-level keys of the first record, in file order: what COPY ``JSON 'auto'`` matches to
    column names (AWS "COPY from JSON format"), for ``on_schema_change`` and
    ``prepare.expected_columns``. Only the text up to the end of that record is read, parsed as
    events (constant memory, however large the record).

    :param chunks: the decoded text.
    :param prefix: where records are, as an ``ijson`` prefix: ``""`` for a stream of objects,
        ``"item"`` for a top-level array, ``"Records.item"`` for an envelope's array.
    :returns: ``(keys or None, the same text as an iterator)``; None when the first record is not
        an object or the JSON is invalid (the load reports that).
    """
    seen: list[str] = []

    def pulled() -> Iterator[str]:
        for chunk in chunks:
            seen.append(chunk)
            yield chunk

    keys: list[str] = []
    found = False
    with contextlib.suppress(ijson.JSONError, UnicodeDecodeError):
        for where, event, value in ijson.parse(Utf8Reader(pulled()), multiple_values=True):
            if where != prefix:
                continue
            if event == "map_key":
                keys.append(value)
            elif event == "end_map":
                found = True
                break
            elif event not in ("start_map", "start_array"):
                break  # a scalar record
    return (tuple(keys) if found else None), itertools.chain(seen, chunks)


def key_meaning(ignore_case: bool) -> Callable[[str], str]:
    """What a JSON key means to COPY: itself with ``JSON 'auto'`` (matched case-sensitively to the
    lower-case column names), folded with ``'auto ignorecase'`` (AWS "COPY from JSON format")."""
    return fold if ignore_case else str


def check_keys(keys: tuple[str, ...] | None, spec: PrepareSpec) -> None:
    """``prepare.expected_columns`` for JSON: the first record's keys must be those names, in any
    order (COPY matches keys by name).

    :raises FileRejected: "keys do not match: expected [..], found [..] in the first record (added
        [..]; missing [..])", or the first record is not an object.
    """
    if spec.expected_columns is None:
        return
    expected = ", ".join(spec.expected_columns)
    if keys is None:
        raise FileRejected(f"expected JSON records with keys [{expected}], the first record is not a JSON object")
    key = key_meaning(spec.json_ignorecase)
    if {key(k) for k in keys} != {key(c) for c in spec.expected_columns}:
        drift = replace(compare(spec.expected_columns, keys, key), reordered=())
        raise FileRejected(
            f"keys do not match: expected [{expected}], found [{', '.join(keys)}] in the first record "
            f"({drift.describe()})"
        )
