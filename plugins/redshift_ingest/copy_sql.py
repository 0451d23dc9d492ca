"""Build the Redshift ``COPY`` statement of a file type from its validated options.

The table name is a validated, quoted identifier; every value (the S3 URL, the IAM role, delimiter,
formats...) is a ``%(name)s`` placeholder bound by the driver. Option names and meanings follow the
AWS "COPY parameter reference" (Data format, File compression, Data conversion and Data load
parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redshift_ingest.config import FileType, TableName, quote_identifier


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
    clauses = ["IAM_ROLE %(iam_role)s"]
    params: dict[str, Any] = {"copy_from": copy_from, "iam_role": iam_role_arn}
    columnar = file_type.format in ("parquet", "orc")
    if columnar:
        clauses.append(f"FORMAT AS {file_type.format.upper()}")
    elif file_type.format == "json":
        clauses.append("FORMAT AS JSON %(json_paths)s")
        params["json_paths"] = opts.json_paths
    else:
        if file_type.format == "csv":
            clauses.append("FORMAT AS CSV")
            if opts.quote is not None:
                clauses.append("QUOTE AS %(quote)s")
                params["quote"] = opts.quote
        if opts.delimiter is not None:
            clauses.append("DELIMITER %(delimiter)s")
            params["delimiter"] = opts.delimiter
        if opts.ignore_header:
            clauses.append(f"IGNOREHEADER {int(opts.ignore_header)}")
    if manifest:
        clauses.append("MANIFEST")
    if compression and not columnar:
        clauses.append({"gzip": "GZIP", "bzip2": "BZIP2", "zstd": "ZSTD"}[compression])
    # Conversion and load options: (clause, option, takes a value?). An unset option (None, False, or an
    # empty format) leaves its clause out; ``NULL AS ''`` is meaningful, so an empty null_as stays.
    # A value goes in as a parameter named after the option.
    options = (
        ("NULL AS", "null_as", True),
        ("EMPTYASNULL", "empty_as_null", False),
        ("BLANKSASNULL", "blanks_as_null", False),
        ("DATEFORMAT", "date_format", True),
        ("TIMEFORMAT", "time_format", True),
        ("ACCEPTINVCHARS AS", "accept_inv_chars", True),
        ("TRUNCATECOLUMNS", "truncate_columns", False),
        ("REGION", "region", True),
    )
    for clause, name, bound in options:
        value = getattr(opts, name)
        if value is None or value is False or (value == "" and name != "null_as"):
            continue
        if bound:
            clauses.append(f"{clause} %({name})s")
            params[name] = value
        else:
            clauses.append(clause)
    clauses.append(f"MAXERROR {int(opts.max_error if max_error is None else max_error)}")
    table_sql = table.quoted if isinstance(table, TableName) else quote_identifier(table)
    column_list = f" ({', '.join(quote_column(c) for c in columns)})" if columns else ""
    sql = f"COPY {table_sql}{column_list}\nFROM %(copy_from)s\n" + "\n".join(clauses)
    return CopyStatement(sql=sql, parameters=params)
