"""``COPY ... FORMAT AS PARQUET`` / ``ORC``: columnar files read with pyarrow, one row group (Parquet) or
stripe (ORC) at a time, through ranged S3 reads (the footer is at the end of the file).

Redshift rules (AWS "COPY from columnar data formats", "COPY parameter reference" SERIALIZETOJSON):
the file's columns map to the table's columns (or the column list) **by position**, and their number
must match; nested columns (struct, list, map) load into SUPER, or as JSON text into CHAR/VARCHAR with
SERIALIZETOJSON. Values are handed to the same converters as text fields, so a value that does not fit
its column (too long, out of range) rejects its row under MAXERROR like any other format.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from redshift_local.convert import Column
from redshift_local.records import Record
from redshift_local.sources import S3Object, SourceError

_READ_SIZE = 1024 * 1024


class ColumnarMismatch(Exception):
    """The file's columns cannot be mapped to the target columns (count, nested without SUPER)."""


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only view of one S3 object made of ranged GETs; ``bytes_read`` counts them."""

    def __init__(self, client: Any, obj: S3Object) -> None:
        self._client = client
        self._obj = obj
        self._pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._obj.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._pos >= self._obj.size or not len(buffer):
            return 0
        end = min(self._obj.size, self._pos + len(buffer)) - 1
        try:
            body = self._client.get_object(Bucket=self._obj.bucket, Key=self._obj.key, Range=f"bytes={self._pos}-{end}")
        except Exception as exc:
            raise SourceError(f"S3ServiceException: cannot read '{self._obj.url}': {exc}") from exc
        data = body["Body"].read()
        buffer[: len(data)] = data
        self._pos += len(data)
        self.bytes_read += len(data)
        return len(data)


def _text(value: Any, serialize: bool) -> str | None:
    """One Arrow value (as pyarrow's ``to_pylist`` gives it) as the text a converter expects."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, list | dict | tuple):  # nested: checked against SERIALIZETOJSON / SUPER up front
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _is_nested(arrow_type: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_nested(arrow_type)


def _check_schema(schema: Any, targets: list[Column], serialize: bool, url: str) -> None:
    if len(schema) != len(targets):
        raise ColumnarMismatch(
            "Unmatched number of columns between table and file. "
            f"Table columns: {len(targets)}, Data in file: {len(schema)} ({url})"
        )
    for field, column in zip(schema, targets, strict=True):
        as_text = serialize and column.typname in ("varchar", "bpchar", "text")
        if _is_nested(field.type) and column.typname != "jsonb" and not as_text:
            raise ColumnarMismatch(
                f"Nested column '{field.name}' ({field.type}) of {url} can only be loaded into a SUPER column,"
                " or into CHAR/VARCHAR with SERIALIZETOJSON"
            )


def _batches(source: io.BufferedIOBase, kind: str) -> tuple[Any, Iterator[Any]]:
    """``(schema, iterator of pyarrow tables)``: one Parquet row group / ORC stripe at a time."""
    if kind == "PARQUET":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(source)
        return parquet.schema_arrow, (parquet.read_row_group(i) for i in range(parquet.num_row_groups))
    from pyarrow import orc

    orc_file = orc.ORCFile(source)
    return orc_file.schema, (orc_file.read_stripe(i) for i in range(orc_file.nstripes))


def columnar_records(
    client: Any, obj: S3Object, kind: str, targets: list[Column], serialize: bool
) -> tuple[S3RangeReader, Iterator[Record]]:
    """Open ``obj`` (a Parquet or ORC file) and return ``(its range reader, its records)``.

    Records carry the 1-based row number as ``line_number`` and the row as JSON as ``raw_line``.
    Raises ``ColumnarMismatch`` (when iterated) for a file whose columns do not fit ``targets``,
    pyarrow's ``ArrowInvalid`` for a file that is not Parquet/ORC, ``SourceError`` for S3 errors.
    """
    reader = S3RangeReader(client, obj)

    def records() -> Iterator[Record]:
        import pyarrow as pa

        try:
            schema, tables = _batches(io.BufferedReader(reader, _READ_SIZE), kind)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ColumnarMismatch(f"{obj.url} is not a valid {kind.title()} file: {exc}") from exc
        _check_schema(schema, targets, serialize, obj.url)
        row_number = 0
        for table in tables:
            columns = [column.to_pylist() for column in table.columns]
            for row in zip(*columns, strict=True):
                row_number += 1
                values = [_text(v, serialize) for v in row]
                raw = json.dumps(list(row), default=str)[:1024]
                yield Record(row_number, raw, values=values)

    return reader, records()
