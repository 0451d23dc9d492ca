"""One pass over a file's decompressed bytes: check the file type, validate, and (when staging) rewrite.

Used twice at most per landed object: first validating only (nothing written, so a file that needs
nothing is never copied), then — only if a rewrite turned out to be needed — staging.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .csv_header import copy_csv
from .json_records import arrays_are_rows, check_keys, first_record_keys, write_ndjson
from .model import FileRejected, PrepareSpec
from .staging import GzipStage
from .text import NeedsStaging, TextStream, Utf8Reader, first_nonspace


@dataclass(frozen=True)
class Content:
    """What one pass found: ``kind`` (``"csv"``, ``"json objects"``, ``"json array -> ndjson"`` ...),
    the rewrites made, and the file's column names: the CSV header if one was read, or the keys of
    the first JSON record (see :func:`.json_records.first_record_keys`)."""

    kind: str
    changes: tuple[str, ...]
    header: tuple[str, ...] | None

    def describe(self) -> str:
        return self.kind + (f" ({', '.join(self.changes)})" if self.changes else "")


def _expected(spec: PrepareSpec) -> str:
    if spec.file_format == "json":
        key = spec.json_records_key
        return f'JSON (objects, an array, or {{"{key}": [...]}})' if key else "JSON (objects or an array)"
    if spec.expected_columns:
        return f"CSV with header [{', '.join(spec.expected_columns)}]"
    return "CSV"


def _json_kind(first: str, chunks: Iterator[str], spec: PrepareSpec) -> tuple[str, Iterator[str]]:
    """What JSON text starting with ``first`` holds, and the same text: ``"json objects"`` and
    ``"json arrays"`` (one per line) load as they are; the others are rewritten to one record a line."""
    if first == "{":
        if spec.json_records_key:
            return f'json {{"{spec.json_records_key}": [...]}} -> ndjson', chunks
        return "json objects", chunks
    rows, chunks = arrays_are_rows(chunks)
    return ("json arrays" if rows else "json array -> ndjson"), chunks


def process(raw: BinaryIO, spec: PrepareSpec, out: GzipStage | None) -> Content:
    """Validate ``raw`` against ``spec``; with ``out``, also write the COPY-ready UTF-8 bytes to it.

    :param raw: decompressed bytes of one file (a landed object or a zip member).
    :param out: ``None`` to validate only.
    :raises NeedsStaging: only when ``out`` is ``None``: the file must be rewritten to load.
    :raises FileRejected: empty, wrong file type, bad encoding, NUL, header problems, bad JSON.
    """
    text = TextStream(raw, spec, staging=out is not None)
    first, chunks = first_nonspace(text.chunks())
    if first is None:
        raise FileRejected("empty file: 0 bytes or only whitespace")
    header = None
    if spec.file_format == "csv":
        if first in "[{":
            raise FileRejected(f"expected {_expected(spec)}, found JSON (first character {first!r})")
        header = copy_csv(chunks, spec, (lambda s: out.write(s.encode("utf-8"))) if out else None)
        kind = "csv"
    elif first in "[{":
        kind, chunks = _json_kind(first, chunks, spec)
        if kind != "json arrays":  # records are objects: their keys are the file's column names
            where = "" if kind == "json objects" else "item" if first == "[" else f"{spec.json_records_key}.item"
            header, chunks = first_record_keys(chunks, where)
            check_keys(header, spec)
        if kind.endswith("-> ndjson"):
            if out is None:
                raise NeedsStaging(kind)
            write_ndjson(Utf8Reader(chunks), "item" if first == "[" else f"{spec.json_records_key}.item", out.write)
        else:  # objects, or one array per line (COPY reads those with a JSONPaths file): as they are
            for chunk in chunks:
                if out is not None:
                    out.write(chunk.encode("utf-8"))
    else:
        raise FileRejected(f"expected {_expected(spec)}, found text (first character {first!r})")
    return Content(kind=kind, changes=tuple(text.changes), header=header)
