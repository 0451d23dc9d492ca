"""Build the Redshift ``COPY`` statement of a file type from its validated options
(``include/sql/load/copy.sql``).

The table name is a validated, quoted identifier; every value (the S3 URL, the IAM role, delimiter,
formats...) is a ``%(name)s`` placeholder bound by the driver. Option names and meanings follow the
AWS "COPY parameter reference" (Data format, File compression, Data conversion and Data load
parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redshift_ingest.config import FileType, TableName, quote_identifier
from redshift_ingest.sql import render

COMPRESSIONS = ("gzip", "bzip2", "zstd")
#: Conversion and load options bound as parameters, and those that are a keyword alone (when true).
BOUND_OPTIONS = ("null_as", "date_format", "time_format", "accept_inv_chars", "region")
FLAG_OPTIONS = ("empty_as_null", "blanks_as_null", "truncate_columns")


def quote_column(name: str) -> str:
    """A delimited identifier for a column name read from the catalog (``"`` doubled inside).

    :raises ValueError: empty, longer than 127 characters, or containing a NUL.
    """
    if not name or len(name) > 127 or "\x00" in name:
        raise ValueError(f"not a usable column name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class CopyStatement:
    """A COPY statement and the parameters to bind with it."""

    sql: str
    parameters: dict[str, Any]


def build_copy(
    file_type: FileType,
    *,
    table: TableName | str,
    copy_from: str,
    iam_role_arn: str,
    compression: str | None,
    manifest: bool = False,
    columns: tuple[str, ...] | None = None,
    max_error: int | None = None,
) -> CopyStatement:
    """The COPY of one file (or manifest) into ``table``.

    :param table: the table COPY writes: the target, or the name of a (temporary) staging table.
    :param copy_from: ``s3://bucket/key`` of the object or of the manifest.
    :param iam_role_arn: the role Redshift assumes to read S3 (``IAM_ROLE``).
    :param compression: ``gzip``, ``bzip2``, ``zstd`` or None: what the object read is compressed with.
    :param manifest: ``copy_from`` is a Redshift manifest (``MANIFEST``).
    :param columns: the column list (AWS COPY "Column mapping options"): the file's fields go to
        these columns in order, the others get their default; None for all columns in table order.
    :param max_error: ``MAXERROR`` for this statement; None for the file type's ``max_error`` (a
        batch of N files through one manifest allows N times a file's limit, and checks each file).
    :returns: the statement and its parameters.
    """
    opts = file_type.copy_options
    if compression not in (None, *COMPRESSIONS):
        raise ValueError(f"compression: expected one of {COMPRESSIONS} or None, got {compression!r}")
    columnar = file_type.format in ("parquet", "orc")
    params: dict[str, Any] = {"copy_from": copy_from, "iam_role": iam_role_arn}
    if file_type.format == "json":
        params["json_paths"] = opts.json_paths
    if file_type.format == "csv" and opts.quote is not None:
        params["quote"] = opts.quote
    if not columnar and file_type.format != "json" and opts.delimiter is not None:
        params["delimiter"] = opts.delimiter
    # An unset option (None, False, or an empty format) is left out; ``NULL AS ''`` is meaningful, so
    # an empty null_as stays. A value goes in as a parameter named after the option.
    for name in BOUND_OPTIONS:
        value = getattr(opts, name)
        if value is not None and (value != "" or name == "null_as"):
            params[name] = value
    sql = render(
        "load/copy.sql",
        table=table.quoted if isinstance(table, TableName) else quote_identifier(table),
        columns=", ".join(quote_column(c) for c in columns) if columns else None,
        format=file_type.format,
        bound=set(params),
        flags={name for name in FLAG_OPTIONS if getattr(opts, name)},
        ignore_header=int(opts.ignore_header) if not columnar and file_type.format != "json" else 0,
        manifest=manifest,
        compression=None if columnar else compression,
        max_error=int(opts.max_error if max_error is None else max_error),
    )
    return CopyStatement(sql=sql, parameters=params)
