"""Turn one JSON document holding an array of records into newline-delimited JSON, streaming.

COPY with ``JSON 'auto'`` reads a stream of JSON objects (or arrays, with JSONPaths), one record
each; a single top-level array would be read as one record, and an envelope such as CloudTrail's
``{"Records": [...]}`` as one row (AWS, COPY from JSON format). ``ijson`` yields the array's items
one at a time, so memory stays at one record plus the parser's buffer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import BinaryIO

import ijson

from .model import FileRejected


def _line(record: object) -> bytes:
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes: keep them escaped
        return json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n"


def write_ndjson(utf8: BinaryIO, prefix: str, write: Callable[[bytes], None]) -> int:
    """Stream the items at ``prefix`` out as one compact JSON value per line.

    :param utf8: the document as a UTF-8 byte stream.
    :param prefix: an ``ijson`` prefix: ``"item"`` for a top-level array, ``"Records.item"`` for
        the array under key ``Records`` of a top-level object.
    :param write: called with each line (UTF-8 bytes ending in ``\\n``).
    :returns: the number of records written (>= 1).
    :raises FileRejected: invalid JSON, an item that is not an object or array, or no records.
        Non-integer numbers are written as floats (``use_float=True``; shortest round-trip repr).
    """
    count = 0
    try:
        for record in ijson.items(utf8, prefix, use_float=True):
            if not isinstance(record, dict | list):
                raise FileRejected(
                    f"expected JSON objects as records, found {type(record).__name__} {record!r:.40} "
                    f"as record {count + 1}"
                )
            write(_line(record))
            count += 1
    except ijson.JSONError as exc:
        detail = exc.args[0] if exc.args else exc
        detail = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        detail = " ".join(detail.split())[:200]
        raise FileRejected(f"expected valid JSON, found a parse error after {count} record(s): {exc}") from exc
    if count == 0:
        where = "the top-level array" if prefix == "item" else f"key {prefix.removesuffix('.item')!r}"
        raise FileRejected(f"expected records in {where}, found none")
    return count
