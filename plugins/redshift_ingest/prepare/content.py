"""One pass over a file's decompressed bytes: check the file type, validate, and (when staging) rewrite.

Used twice at most per landed object: first validating only (nothing written, so a file that needs
nothing is never copied), then — only if a rewrite turned out to be needed — staging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from .csv_header import copy_csv
from .json_records import write_ndjson
from .model import FileRejected, PrepareSpec
from .staging import GzipStage
from .text import NeedsStaging, TextStream, Utf8Reader, first_nonspace


@dataclass(frozen=True)
class Content:
    """What one pass found: ``kind`` (``"csv"``, ``"json objects"``, ``"json array -> ndjson"`` ...),
    the rewrites made, and the CSV header if one was read."""

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
    elif first == "[" or (first == "{" and spec.json_records_key):
        if out is None:
            raise NeedsStaging("json array -> ndjson")
        prefix = "item" if first == "[" else f"{spec.json_records_key}.item"
        write_ndjson(Utf8Reader(chunks), prefix, out.write)
        kind = "json array -> ndjson" if first == "[" else f'json {{"{spec.json_records_key}": [...]}} -> ndjson'
    elif first == "{":
        for chunk in chunks:  # a stream of objects loads as is; only the encoding is checked
            if out is not None:
                out.write(chunk.encode("utf-8"))
        kind = "json objects"
    else:
        raise FileRejected(f"expected {_expected(spec)}, found text (first character {first!r})")
    return Content(kind=kind, changes=tuple(text.changes), header=header)
