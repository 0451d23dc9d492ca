"""CopyIntoTargetOperator: COPY one claimed file into its table, with the rows loaded and rejected."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg2
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from redshift_ingest import register
from redshift_ingest.config import FileType, Settings, default_settings, quote_identifier
from redshift_ingest.copy_sql import build_copy, quote_column
from redshift_ingest.hooks.warehouse import WarehouseHook
from redshift_ingest.replay import hold_claim
from redshift_ingest.sql import render

if TYPE_CHECKING:
    from airflow.sdk import Context

ERROR_REPORT_ROWS = 1000  # rows of the rejected-rows report; STL_LOAD_ERRORS keeps them anyway


class NewerVersionLoaded(AirflowFailException):
    """A newer version of the same S3 key is already loaded: this older one is not (not retried)."""


class LoadRejected(AirflowFailException):
    """COPY failed because of the file's data (above MAXERROR, bad format): not retried."""

    def __init__(self, message: str, result: LoadResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class LoadError:
    """One rejected row as Redshift records it (STL_LOAD_ERRORS / SYS_LOAD_ERROR_DETAIL)."""

    file_name: str | None
    line_number: int | None
    column_name: str | None
    column_type: str | None
    error_code: int | None
    error_message: str | None
    raw_value: str | None

    def describe(self) -> str:
        """``line 4, column venueseats (int4): Invalid digit, Value 'x' [1207]``."""
        parts = [f"line {self.line_number}"]
        if self.column_name:
            parts.append(f"column {self.column_name}" + (f" ({self.column_type})" if self.column_type else ""))
        text = ", ".join(parts) + f": {self.error_message}"
        if self.raw_value:
            text += f" (value {self.raw_value!r})"
        if self.error_code is not None:
            text += f" [{self.error_code}]"
        return text


@dataclass(frozen=True)
class LoadResult:
    """What one COPY did. Counts are rows; ``copy_query_id`` keys its load-error rows."""

    rows_loaded: int
    rows_rejected: int
    copy_query_id: int | None
    first_error: str | None
    error_report_key: str | None = None
    already_loaded: bool = False
    rows_replaced: int = 0  # rows of earlier versions of the same key deleted (on_new_version: replace)

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


class CopyIntoTargetOperator(BaseOperator):
    """Load one claimed file into its file type's table with Redshift ``COPY``, exactly once.

    On **one connection in one transaction** it (for ``load_mode: replace``) deletes the table's rows,
    runs the COPY built from the file type's validated options (identifiers quoted, values bound,
    ``IAM_ROLE`` from the warehouse connection's ``iam_role_arn`` extra), reads
    ``pg_last_copy_count()`` and ``pg_last_copy_id()`` (both per session: AWS "PG_LAST_COPY_COUNT"),
    counts the rows rejected and the first error from ``stl_load_errors`` or ``sys_load_error_detail``
    (``settings.load_errors_source``; STL_LOAD_ERRORS does not exist on Redshift Serverless), and
    records them in the register with a guarded UPDATE. Then it commits: the rows and "loaded" become
    visible together. A retry or a cleared task finds the file already loaded and loads nothing.

    With ``target.file_id_column`` the COPY goes into a temporary staging table shaped like the
    target, and from there into the target with the loading ``file_id`` in that column, after a
    file-scoped delete: a forced reload replaces the file's own rows, and ``on_new_version: replace``
    deletes the rows of earlier versions of the same key (they become ``REPLACED``). All of it is the
    same transaction as the COPY and the register update.

    When rows were rejected, a CSV report of them (line, column, type, code, reason, raw value) is
    written to S3 at ``<archive_prefix><key>.load_errors.csv`` and its key recorded.

    :param file_type: the validated file type.
    :param claimed_file: ``claim_file``'s XCom: a :class:`~redshift_ingest.register.ClaimedFile` dict.
        (templated)
    :param prepared: ``prepare_file``'s XCom: ``{"copy_from", "manifest", "compression"}``; None to
        read the landed object as is. (templated)
    :param settings: shared settings (connection ids, register table); default: the deployed ones.
    :returns: (XCom) :class:`LoadResult` as a dict.
    :raises LoadRejected: the COPY failed on the file's data (not retried); the file goes FAILED.
    :raises NewerVersionLoaded: a newer version of the key is already loaded (not retried, not quarantined).
    :raises AirflowFailException: the target lacks ``target.file_id_column`` (a config error).
    :raises register.ClaimLost: this run no longer holds the file.
    :raises psycopg2.OperationalError: the connection failed (retried by Airflow).
    """

    template_fields: Sequence[str] = ("claimed_file", "prepared")
    ui_color = "#d5e8f5"

    def __init__(
        self,
        *,
        file_type: FileType,
        claimed_file: dict[str, Any] | str,
        prepared: dict[str, Any] | str | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.file_type = file_type
        self.claimed_file = claimed_file
        self.prepared = prepared
        self.settings = settings

    def execute(self, context: Context) -> dict[str, Any]:
        settings = self.settings or default_settings()
        claim = register.ClaimedFile.from_xcom(self.claimed_file)
        run_id = context["run_id"]
        hook = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id)
        conn = hook.get_conn()
        try:
            row = hold_claim(conn, settings, claim.file_id, run_id)
            conn.rollback()
            if row["loaded_at"] is not None:
                self.log.info(
                    "%s was already loaded by COPY query %s (%s rows): not loading it again",
                    claim.url,
                    row["copy_query_id"],
                    row["rows_loaded"],
                )
                return LoadResult(
                    rows_loaded=row["rows_loaded"],
                    rows_rejected=row["rows_rejected"] or 0,
                    copy_query_id=row["copy_query_id"],
                    first_error=row["first_error"],
                    error_report_key=row["error_report_key"],
                    already_loaded=True,
                ).to_xcom()
            result = self._load(conn, hook, settings, claim, run_id, row)
        finally:
            conn.close()
        self.log.info(
            "COPY %s -> %s: %d rows loaded, %d rows rejected (query %s)",
            claim.url,
            self.file_type.target.table,
            result.rows_loaded,
            result.rows_rejected,
            result.copy_query_id,
        )
        return result.to_xcom()

    def _load(
        self, conn, hook: WarehouseHook, settings: Settings, claim: register.ClaimedFile, run_id: str, row: dict
    ) -> LoadResult:
        prepared = self.prepared or {}
        target = self.file_type.target
        source = settings.load_errors_source
        try:
            with conn.cursor() as cur:
                columns = tagged_table_columns(cur, self.file_type) if target.file_id_column else None
                copy_table = target.table if columns is None else self._create_staging_table(cur)
                copy = build_copy(
                    self.file_type,
                    table=copy_table,
                    copy_from=prepared.get("copy_from") or claim.url,
                    iam_role_arn=hook.iam_role_arn,
                    compression=prepared.get("compression"),
                    manifest=bool(prepared.get("manifest")),
                    columns=None if columns is None else tuple(c for c in columns if c != target.file_id_column),
                )
                if columns is None and self.file_type.load_mode == "replace":
                    # Not TRUNCATE: it commits implicitly on Redshift (AWS "TRUNCATE").
                    cur.execute(f"DELETE FROM {target.table.quoted}")
                self.log.info("Running COPY into %s from %s", copy_table, copy.parameters["copy_from"])
                cur.execute(copy.sql, copy.parameters)
                cur.execute("SELECT pg_last_copy_count(), pg_last_copy_id()")
                rows_loaded, query_id = cur.fetchone()
                errors = _load_errors(cur, source, query_id, ERROR_REPORT_ROWS)
                cur.execute(render(f"load/count_load_errors_{source}.sql"), {"query_id": query_id})
                rows_rejected = cur.fetchone()[0]
                rows_replaced = 0
                if columns is not None:
                    rows_replaced = self._publish(cur, settings, claim, row, columns, copy_table)
                report_key = None
                if rows_rejected:
                    report_key = settings.archive_prefix + claim.key + ".load_errors.csv"
                result = LoadResult(
                    rows_loaded=rows_loaded,
                    rows_rejected=rows_rejected,
                    copy_query_id=query_id,
                    first_error=errors[0].describe() if errors else None,
                    error_report_key=report_key,
                    rows_replaced=rows_replaced,
                )
                recorded = register.record_load(
                    cur,
                    settings,
                    claim.file_id,
                    run_id,
                    copy_query_id=query_id,
                    rows_loaded=rows_loaded,
                    rows_rejected=rows_rejected,
                    first_error=result.first_error[:1000] if result.first_error else None,
                    error_report_key=report_key,
                )
                if not recorded:
                    conn.rollback()
                    raise register.ClaimLost(
                        f"{claim.url}: the register refused 'loaded' (already loaded or claim lost); "
                        "the COPY was rolled back"
                    )
            if report_key:
                # Written before the commit: a report without a load is harmless, a load whose
                # report is missing would hide rejected rows.
                _write_error_report(settings, claim.bucket, report_key, errors)
            conn.commit()
            return result
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            raise
        except AirflowFailException:
            conn.rollback()
            raise
        except psycopg2.Error as err:
            conn.rollback()
            raise self._rejected(conn, settings, claim, err) from err

    @property
    def _staging_name(self) -> str:
        return f"stage_{self.file_type.name}"

    def _create_staging_table(self, cur) -> str:
        """A temporary table shaped like the target, for this session and transaction (AWS "Use a
        staging table to perform a merge"): COPY writes it, then its rows go to the target with the
        loading ``file_id``. :returns: its (unqualified) name."""
        name = self._staging_name
        cur.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")
        cur.execute(f"CREATE TEMP TABLE {quote_identifier(name)} (LIKE {self.file_type.target.table.quoted})")
        return name

    def _publish(
        self, cur, settings: Settings, claim: register.ClaimedFile, row: dict, columns: list[str], staging: str
    ) -> int:
        """Staging table -> target, tagged with ``file_id``, under ``LOCK`` of the target.

        Deletes first, in the same transaction: for ``load_mode: replace`` every row; otherwise the
        rows an earlier load of this very file left (a forced reload), and, with ``on_new_version:
        replace``, the rows of the earlier versions of the same key (marked ``REPLACED``).

        :returns: rows deleted for earlier versions of the key.
        :raises NewerVersionLoaded: a newer version of the key is already loaded (nothing is changed).
        """
        target = self.file_type.target
        table = target.table.quoted
        lineage = quote_column(target.file_id_column)
        # Serialise writers of the target (two file types may share it; Redshift "LOCK" avoids
        # serializable-isolation errors between concurrent DELETE/INSERT transactions).
        cur.execute(f"LOCK {table}")
        rows_replaced = 0
        if target.on_new_version == "replace" and self.file_type.load_mode == "append":
            versions = register.loaded_versions(cur, settings, claim.file_id, claim.bucket, claim.key)
            newer = [v for v in versions if _version_order(v) > _version_order(row)]
            if newer:
                raise NewerVersionLoaded(
                    f"{claim.url} (last modified {row['last_modified']}) is older than version "
                    f"{newer[-1]['file_id']} (last modified {newer[-1]['last_modified']}, registered "
                    f"{newer[-1]['registered_at']}), whose rows are already in {target.table}: "
                    "loading it would replace newer rows with older ones, so nothing was loaded. "
                    "The file is kept where it is."
                )
            for version in versions:
                cur.execute(f"DELETE FROM {table} WHERE {lineage} = %(file_id)s", {"file_id": version["file_id"]})
                deleted = cur.rowcount
                register.mark_replaced(cur, settings, version["file_id"], claim.file_id, deleted)
                rows_replaced += deleted
                self.log.info(
                    "Replaced version %s of %s: %d rows deleted from %s", version["file_id"], claim.url, deleted, table
                )
        if self.file_type.load_mode == "replace":
            cur.execute(f"DELETE FROM {table}")  # Not TRUNCATE: it commits implicitly on Redshift.
        else:
            cur.execute(f"DELETE FROM {table} WHERE {lineage} = %(file_id)s", {"file_id": claim.file_id})
            if cur.rowcount:
                self.log.info("Deleted %d rows an earlier load of this file left in %s", cur.rowcount, table)
        data = ", ".join(quote_column(c) for c in columns if c != target.file_id_column)
        cur.execute(
            f"INSERT INTO {table} ({data}, {lineage}) SELECT {data}, %(file_id)s FROM {quote_identifier(staging)}",
            {"file_id": claim.file_id},
        )
        cur.execute(f"DROP TABLE {quote_identifier(staging)}")
        return rows_replaced

    def _rejected(self, conn, settings: Settings, claim: register.ClaimedFile, err: psycopg2.Error) -> LoadRejected:
        source = settings.load_errors_source
        message = (err.pgerror or str(err)).strip()
        with conn.cursor() as cur:
            cur.execute(render(f"load/failed_copy_id_{source}.sql"))
            query_id = cur.fetchone()[0]
            errors = _load_errors(cur, source, query_id, ERROR_REPORT_ROWS) if query_id else []
            rows_rejected = 0
            if query_id:
                cur.execute(render(f"load/count_load_errors_{source}.sql"), {"query_id": query_id})
                rows_rejected = cur.fetchone()[0]
        conn.rollback()
        report_key = None
        if errors:
            report_key = settings.quarantine_prefix + claim.key + ".load_errors.csv"
            _write_error_report(settings, claim.bucket, report_key, errors)
        first = errors[0].describe() if errors else None
        result = LoadResult(
            rows_loaded=0,
            rows_rejected=rows_rejected,
            copy_query_id=query_id,
            first_error=first,
            error_report_key=report_key,
        )
        via = f" (through staging table {self._staging_name})" if self.file_type.target.file_id_column else ""
        text = f"COPY of {claim.url} into {self.file_type.target.table}{via} failed: {message}"
        if first:
            max_error = self.file_type.copy_options.max_error
            text += f" | {rows_rejected} rows rejected (MAXERROR {max_error}); first: {first}"
        return LoadRejected(text, result)


def _version_order(row: dict[str, Any]) -> tuple[datetime, datetime]:
    """Which of two versions of a key is newer: S3 last-modified (whole seconds), then registration."""
    return (row.get("last_modified") or datetime.min, row.get("registered_at") or datetime.min)


def tagged_table_columns(cur, file_type: FileType) -> list[str]:
    """The target's column names in order (from the description of a zero-row SELECT), checked to
    include ``target.file_id_column``.

    :raises AirflowFailException: the column is missing; the message says what to add where.
    """
    target = file_type.target
    cur.execute(f"SELECT * FROM {target.table.quoted} LIMIT 0")
    columns = [d[0] for d in cur.description]
    if target.file_id_column not in columns:
        raise AirflowFailException(
            f"table {target.table} has no column {target.file_id_column!r} (target.file_id_column of file type "
            f"{file_type.name}): add {target.file_id_column} VARCHAR(64) to the table and to "
            f"include/sql/{target.ddl}; nothing was loaded"
        )
    return columns


def _load_errors(cur, source: str, query_id: int | None, limit: int) -> list[LoadError]:
    if query_id is None:
        return []
    cur.execute(render(f"load/load_errors_{source}.sql"), {"query_id": query_id, "limit": limit})
    return [LoadError(*row) for row in cur.fetchall()]


def _write_error_report(settings: Settings, bucket: str, key: str, errors: list[LoadError]) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["line_number", "column_name", "column_type", "error_code", "error_message", "raw_value", "file_name"]
    )
    for e in errors:
        writer.writerow(
            [
                e.line_number,
                e.column_name,
                e.column_type,
                e.error_code,
                e.error_message,
                e.raw_value,
                e.file_name,
            ]
        )
    S3Hook(aws_conn_id=settings.aws_conn_id).load_string(buffer.getvalue(), key=key, bucket_name=bucket, replace=True)
