"""CopyIntoTargetOperator: COPY S3 objects into a table in one transaction, with the rows loaded
and rejected per file: a run's claimed files (the factory's DAGs), or plain S3 URLs / a manifest
(a hand-written DAG, no register).

The load engine (:mod:`redshift_ingest.batch_load`, :mod:`redshift_ingest.tasks`, the warehouse hook)
is imported when the operator runs: building a DAG with it imports none of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator
from pydantic import ValidationError

from redshift_ingest import metrics, paths
from redshift_ingest.config import CopyOptions, FileType, Settings, TableName, default_settings
from redshift_ingest.errors import FileDataError, LoadConfigError, RunHadFailures
from redshift_ingest.s3_objects import s3_hook

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from redshift_ingest.batch_load import BatchFile, BatchOutcome, FileFailure, FileLoad, LoadError
    from redshift_ingest.hooks.warehouse import WarehouseHook

__all__ = ["CopyIntoTargetOperator", "LoadError", "LoadRejected", "LoadResult", "NewerVersionLoaded", "ObjectChanged"]


def __getattr__(name: str) -> Any:
    """``LoadError`` (exported here, defined in :mod:`redshift_ingest.batch_load`), imported on first use."""
    if name == "LoadError":
        from redshift_ingest.batch_load import LoadError

        return LoadError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class NewerVersionLoaded(LoadConfigError):
    """A newer version of the same S3 key is already loaded: this older one is not (not retried,
    not quarantined)."""


class ObjectChanged(LoadConfigError):
    """The object under the key is no longer the registered version: that version was not loaded
    (FILTERED_OUT; a newer upload is its own file)."""


class LoadRejected(FileDataError):
    """COPY failed because of the file's data (above MAXERROR, bad format): not retried, quarantined."""

    def __init__(self, message: str, result: LoadResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class LoadResult:
    """What the load did for one file. Counts are rows; ``copy_query_id`` keys its load-error rows."""

    rows_loaded: int
    rows_rejected: int
    copy_query_id: int | None
    first_error: str | None
    error_report_key: str | None = None
    already_loaded: bool = False
    rows_replaced: int = 0  # rows of earlier versions of the same key deleted (on_new_version: replace)
    file_id: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


class CopyIntoTargetOperator(BaseOperator):
    """Load S3 objects into a Redshift table with ``COPY``, in **one transaction**, with the rows
    loaded and rejected of every file.

    Two ways to call it; both run the same engine (:class:`~redshift_ingest.batch_load.BatchLoader`):
    one ``COPY ... MANIFEST`` for the batch (every entry a full key, ``"mandatory": true``), per-file
    counts from ``STL_LOAD_COMMITS`` less each file's ``STL_LOAD_ERRORS`` rows (``SYS_LOAD_DETAIL``
    / ``SYS_LOAD_ERROR_DETAIL`` on Serverless), checked to add up to ``pg_last_copy_count()``, else
    loaded again one COPY per file; a file over MAXERROR is found and named.

    **Plain arguments** (a hand-written DAG, no register)::

        CopyIntoTargetOperator(
            task_id="load_venues",
            table="tickit.venue",
            s3_urls=["s3://my-bucket/venue/part-1.txt", "s3://my-bucket/venue/part-2.txt"],
            format="text",
            copy_options={"delimiter": "|", "max_error": 10},
        )

    The table must exist. Every object is checked with a HEAD request first (a missing one is an
    error before any COPY) and again, by ETag, after the COPY and before the commit. The operator
    writes its own COPY manifest(s) under ``s3://<first object's bucket>/<staging_prefix>...`` and
    deletes them when done (the role needs ``s3:PutObject`` and ``s3:DeleteObject`` there).

    :param table: ``schema.table``, lower-case identifiers (Redshift "Names and identifiers"). (templated)
    :param s3_urls: the ``s3://bucket/key`` objects to load (full keys, not prefixes); a single URL
        string is one object. (templated)
    :param manifest: instead of ``s3_urls``: the ``s3://`` URL of a Redshift manifest (AWS "Using a
        manifest to specify data files": ``{"entries": [{"url": ..., "mandatory": bool}]}``); its
        entries are loaded as ``s3_urls`` (a missing entry is an error when ``mandatory``, skipped
        otherwise). (templated)
    :param format: ``csv``, ``text`` (delimited), ``json``, ``parquet`` or ``orc``.
    :param copy_options: COPY options as a dict, validated by
        :class:`~redshift_ingest.config.CopyOptions` (the file types' ``copy_options``: ``delimiter``,
        ``ignore_header``, ``quote``, ``null_as``, ``date_format``, ``time_format``, ``max_error``
        (per file), ``json_paths``, ``region``...); no SQL text. (templated)
    :param compression: ``auto`` (by suffix: ``.gz``/``.gzip``, ``.bz2``, ``.zst``/``.zstd``; else
        none), ``none``, ``gzip``, ``bzip2`` or ``zstd``, for every object.
    :param redshift_conn_id: the warehouse connection (:class:`~redshift_ingest.hooks.warehouse.WarehouseHook`;
        default ``redshift_default``); COPY's ``IAM_ROLE`` is its extra ``iam_role_arn``, never an argument.
    :param aws_conn_id: the S3 connection (HEAD, manifests; default ``aws_default``).
    :param on_bad_file: ``fail`` (default): a file over MAXERROR (or otherwise refused by COPY, or
        overwritten during the load) fails the task with that file's first error, and nothing is
        committed. ``skip``: such files are left out, listed under ``skipped``, and the others are
        loaded and committed; the task fails only when every file is bad.
    :param staging_prefix: key prefix of the COPY manifests the operator writes (default ``staging/``).
    :param load_errors_source: ``stl_load_errors`` (provisioned, the default) or ``sys_load_error_detail``
        (Serverless).
    :returns: (XCom) ``{"files": [{"url", "rows_loaded", "rows_rejected", "first_error",
        "copy_query_id"}], "rows_loaded": n, "rows_rejected": n, "copies": n, "skipped": [{"url",
        "rows_rejected", "first_error", "copy_query_id", "reason"}]}``: rows, per file and in total;
        ``copies`` the COPY statements run; ``first_error`` like ``line 4, column venueseats (int4):
        Invalid digit, Value 'x' [1207]`` (None without rejected rows).
    :raises LoadRejected: a file's data failed it (``on_bad_file: fail``), or every file (``skip``);
        the message starts with the first file's first error; nothing was committed.
    :raises ObjectChanged: an object was overwritten or deleted during the load (``fail``).
    :raises redshift_ingest.errors.LoadConfigError: bad arguments (table name, COPY options, a URL, a
        missing object, no ``iam_role_arn``), a missing table or permissions (not retried).
    :raises redshift_ingest.errors.RetryableLoadError: a passing warehouse problem (retried by Airflow).

    **Register mode** (the factory's DAGs): ``file_type`` with ``claimed_files`` (or
    ``claimed_file``) and ``prepared``. Creates the table first when missing (the file type's DDL).
    Then, on one connection in one transaction, it COPYs the batch (or, when rows carry their
    ``file_id``, one COPY per file into a staging table), reads every file's counts
    (``settings.load_errors_source``), and records them in the register with one guarded UPDATE.
    Then it commits: the rows and "loaded" of every file become visible together. A retry or a
    cleared task finds the files loaded and loads nothing. The factory passes the file type's table,
    format, COPY options, connection ids, staging prefix and load-errors source as the plain arguments
    above (each defaults to the file type's / ``settings``' value); the COPY runs with what they render
    to, the file type keeps the register policy (DDL, ``file_id`` column, load mode, new versions).

    Files at fault are set aside and the rest loaded in the same run: bad data is FAILED and
    quarantined (with its rejected-rows report), an object that changed since registration is
    FILTERED_OUT, an older version of a key already loaded newer is FAILED and kept. The claims'
    leases are renewed while the COPY runs.

    :param file_type: the validated file type.
    :param claimed_files: ``claim_files``' XCom: a list of
        :class:`~redshift_ingest.register.ClaimedFile` dicts (one dict is one file). (templated)
    :param prepared: ``prepare_files``' XCom: one dict per file with ``file_id``, ``entries`` (the
        s3:// URLs COPY reads), ``compression``; None to read each landed object as is. (templated)
    :param settings: shared settings (connection ids, register table); default: the deployed ones.
    :returns: (XCom) ``{"files": [LoadResult dicts], "failed": [file_id...], "copies": n,
        "transactions": n, "mode": "manifest" | "per_file"}``; given one file as ``claimed_file``,
        that file's :class:`LoadResult` dict.
    :raises LoadRejected: a one-file load failed on the file's data (the file is FAILED, quarantined).
    :raises NewerVersionLoaded: a one-file load of an older version of a key loaded newer.
    :raises RunHadFailures: every file of a batch failed (each was marked; the failure callback alerts).
    :raises redshift_ingest.errors.RetryableLoadError: a passing warehouse problem (retried by Airflow).
    :raises redshift_ingest.errors.LoadConfigError: permissions or configuration (not retried).
    """

    template_fields: Sequence[str] = ("claimed_files", "prepared", "table", "s3_urls", "manifest", "copy_options")
    ui_color = "#d5e8f5"

    def __init__(
        self,
        *,
        table: str | None = None,
        s3_urls: list[str] | str | None = None,
        manifest: str | None = None,
        format: Literal["csv", "text", "json", "parquet", "orc"] | None = None,
        copy_options: dict[str, Any] | None = None,
        compression: Literal["auto", "none", "gzip", "bzip2", "zstd"] = "auto",
        redshift_conn_id: str | None = None,
        aws_conn_id: str | None = None,
        on_bad_file: Literal["fail", "skip"] = "fail",
        staging_prefix: str | None = None,
        load_errors_source: Literal["stl_load_errors", "sys_load_error_detail"] | None = None,
        file_type: FileType | None = None,
        claimed_files: list[dict[str, Any]] | str | None = None,
        claimed_file: dict[str, Any] | None = None,
        prepared: list[dict[str, Any]] | str | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if file_type is not None:
            if s3_urls is not None or manifest is not None:
                raise ValueError("register mode (file_type) loads the claimed files: no s3_urls or manifest")
            # The COPY's arguments default to the file type's config (the factory passes them explicitly);
            # what they render to is what the COPY runs with, in either mode.
            table = str(file_type.target.table) if table is None else table
            format = file_type.format if format is None else format
            copy_options = file_type.copy_options.model_dump() if copy_options is None else copy_options
        elif table is None or (s3_urls is None) == (manifest is None):
            raise ValueError("give table and one of s3_urls or manifest (or file_type, for register mode)")
        if on_bad_file not in ("fail", "skip"):
            raise ValueError(f"on_bad_file: expected 'fail' or 'skip', got {on_bad_file!r}")
        self.table: Any = table
        self.s3_urls: Any = s3_urls
        self.manifest: Any = manifest
        self.format = format or "csv"
        self.copy_options: Any = copy_options or {}
        self.compression = compression
        # None: register mode takes them from ``settings``; plain mode from Settings' defaults.
        self.redshift_conn_id = redshift_conn_id
        self.aws_conn_id = aws_conn_id
        self.on_bad_file = on_bad_file
        self.staging_prefix = staging_prefix
        self.load_errors_source = load_errors_source
        self.file_type = file_type
        self.single = claimed_file is not None
        # Templated: an XCom reference (str) until rendered, then the lists described above.
        self.claimed_files: Any = [claimed_file] if claimed_file is not None else claimed_files
        self.prepared: Any = prepared
        self.settings = settings

    def _settings(self, base: Settings | None) -> Settings:
        """``base`` (register mode) or Settings' defaults (plain mode) with the connection ids, staging
        prefix and load-errors source given as arguments.

        :raises LoadConfigError: one of them is invalid.
        """
        given = {
            "warehouse_conn_id": self.redshift_conn_id,
            "aws_conn_id": self.aws_conn_id,
            "staging_prefix": self.staging_prefix,
            "load_errors_source": self.load_errors_source,
        }
        fields = base.model_dump() if base else {"landing_bucket": "unused-by-a-plain-copy"}
        try:
            return Settings.model_validate({**fields, **{k: v for k, v in given.items() if v is not None}})
        except ValidationError as err:
            names = "redshift_conn_id / aws_conn_id / staging_prefix / load_errors_source"
            raise LoadConfigError(f"{names}: {err}") from err

    def execute(self, context: Context) -> dict[str, Any]:
        if self.file_type is None:
            return self._execute_plain(context)
        return self._execute_claims(context, self.file_type)

    # -- plain arguments ----------------------------------------------------------------------

    def _execute_plain(self, context: Context) -> dict[str, Any]:
        from redshift_ingest import tasks
        from redshift_ingest.batch_load import FilesAtFault, record_nothing
        from redshift_ingest.hooks.warehouse import WarehouseHook

        file_type = plain_file_type(self.table, self.format, self.copy_options)
        settings = self._settings(None)
        hook = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id)
        s3 = s3_hook(settings.aws_conn_id).get_conn()
        urls = _urls(self.s3_urls) if self.manifest is None else _manifest_urls(s3, self.manifest)
        files = _head_all(s3, urls, self.compression)
        if not files:
            self.log.info("No object to load into %s", file_type.target.table)
            return {"files": [], "rows_loaded": 0, "rows_rejected": 0, "copies": 0, "skipped": []}
        try:
            iam_role_arn = hook.iam_role_arn
        except ValueError as err:
            raise LoadConfigError(str(err)) from err
        run_id = context["run_id"]
        conn = hook.get_conn()
        try:
            try:
                outcome = self._load(
                    conn,
                    s3,
                    file_type,
                    settings,
                    files,
                    iam_role_arn=iam_role_arn,
                    run_id=run_id,
                    manifest_tag=tasks.run_digest(f"{run_id}/{self.task_id}"),
                    error_report_key=lambda f, failed: None,
                    record=record_nothing,
                    set_aside=self.on_bad_file == "skip",
                )
            except FilesAtFault as bad:
                raise _plain_failure(bad.failures, file_type) from None
            self._remember_lineage(conn, hook, settings.warehouse_conn_id, file_type, files, outcome)
            conn.rollback()
        finally:
            conn.close()
        if not outcome.loads:
            raise _plain_failure(outcome.failures, file_type)
        url = {f.file_id: f.url for f in files}
        result = {
            "files": [_plain_file(url[x.file_id], x) for x in outcome.loads],
            "rows_loaded": sum(x.rows_loaded for x in outcome.loads),
            "rows_rejected": sum(x.rows_rejected for x in outcome.loads),
            "copies": outcome.copies,
            "skipped": [_skipped(f) for f in outcome.failures],
        }
        self.log.info(
            "COPY into %s: %d file(s) loaded (%d rows, %d rejected), %d skipped; %d COPY statement(s), %s mode",
            file_type.target.table,
            len(outcome.loads),
            result["rows_loaded"],
            result["rows_rejected"],
            len(outcome.failures),
            outcome.copies,
            outcome.mode,
        )
        return result

    # -- the engine, both ways ----------------------------------------------------------------

    def _load(
        self, conn, s3, file_type: FileType, settings: Settings, files: list[BatchFile], **loader: Any
    ) -> BatchOutcome:
        """One :class:`BatchLoader` run over ``files`` (its manifests deleted afterwards)."""
        from redshift_ingest.batch_load import BatchLoader

        batch = BatchLoader(conn, s3, file_type=file_type, settings=settings, **loader)
        try:
            return batch.load(files)
        finally:
            batch.clear_manifests()

    def _remember_lineage(
        self, conn, hook: WarehouseHook, conn_id: str, file_type: FileType, files: list[BatchFile], outcome
    ) -> None:
        """What :meth:`get_openlineage_facets_on_complete` reports (``outcome`` None: nothing loaded)."""
        from redshift_ingest import lineage  # OpenLineage's client: not at DAG parse time

        loaded_ids = {x.file_id for x in outcome.loads} if outcome else set()
        self._lineage = {
            "inputs": [u for f in files if f.file_id in loaded_ids for u in f.entries],
            "rows_loaded": sum(x.rows_loaded for x in outcome.loads) if outcome else 0,
            "rows_rejected": sum(x.rows_rejected for x in outcome.loads) if outcome else 0,
            "size_bytes": sum(f.size_bytes or 0 for f in files if f.file_id in loaded_ids),
            "file_id": next(iter(loaded_ids)) if self.file_type and len(loaded_ids) == 1 else None,
            "connection": hook.get_connection(conn_id),
            "table": str(file_type.target.table),
            "replaced_table": file_type.load_mode == "replace",
        }
        with conn.cursor() as cur:
            self._lineage["columns"] = lineage.table_columns(cur, str(file_type.target.table))

    # -- register mode ------------------------------------------------------------------------

    def _execute_claims(self, context: Context, file_type: FileType) -> dict[str, Any]:
        from redshift_ingest import register, tasks
        from redshift_ingest.hooks.warehouse import WarehouseHook

        settings = self._settings(self.settings or default_settings())
        file_type = register_file_type(file_type, self.table, self.format, self.copy_options)
        claims = tasks.claims_of(self.claimed_files)
        run_id = context["run_id"]
        tasks.ensure_target_table(file_type, settings)
        hook = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id)
        s3 = s3_hook(settings.aws_conn_id).get_conn()
        conn = hook.get_conn()
        try:
            rows = tasks.hold_files(conn, settings, claims, run_id)
            prepared = {p["file_id"]: p for p in (self.prepared or [])}
            todo = [
                r
                for r in rows
                if r["status"] == register.IN_PROGRESS
                and r["loaded_at"] is None
                and (self.prepared is None or r["file_id"] in prepared)
            ]
            files = [_batch_file(r, prepared.get(r["file_id"])) for r in todo]
            outcome = None
            if files:
                with _LeaseKeeper(settings, run_id, [f.file_id for f in files]) as keeper:
                    outcome = self._load(
                        conn,
                        s3,
                        file_type,
                        settings,
                        files,
                        iam_role_arn=hook.iam_role_arn,
                        run_id=run_id,
                        manifest_tag=tasks.run_digest(run_id),
                        error_report_key=lambda f, failed: paths.error_report_key(settings, f.key, quarantined=failed),
                        transaction_guard=keeper.held,
                    )
            by_id = {r["file_id"]: r for r in todo}
            if outcome and outcome.columns_added:
                self._alert_columns_added(file_type, settings, context, files, outcome.columns_added)
            for failure in outcome.failures if outcome else []:
                self._set_aside(file_type, conn, settings, by_id[failure.file.file_id], run_id, failure)
            after = {r["file_id"]: r for r in register.run_files(conn, settings, run_id, [c.file_id for c in claims])}
            self._remember_lineage(conn, hook, settings.warehouse_conn_id, file_type, files, outcome)
            conn.rollback()
        finally:
            conn.close()
        results = [
            _result(after[c.file_id], c.file_id, loaded_before=c.file_id not in {f.file_id for f in files})
            for c in claims
            if c.file_id in after and after[c.file_id]["loaded_at"] is not None
        ]
        failed = outcome.failures if outcome else []
        if outcome:
            self.log.info(
                "COPY into %s: %d file(s) loaded (%d rows, %d rejected), %d set aside; %d COPY statement(s) "
                "in %d transaction(s), %s mode",
                file_type.target.table,
                len(outcome.loads),
                sum(x.rows_loaded for x in outcome.loads),
                sum(x.rows_rejected for x in outcome.loads),
                len(failed),
                outcome.copies,
                outcome.transactions,
                outcome.mode,
            )
        if self.single:
            return self._single(results, failed, outcome)
        if failed and not results:
            raise RunHadFailures(f"every file of this run failed its COPY ({len(failed)})", alerted=False)
        return {
            "files": results,
            "failed": [f.file.file_id for f in failed],
            "copies": outcome.copies if outcome else 0,
            "transactions": outcome.transactions if outcome else 0,
            "mode": outcome.mode if outcome else None,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """OpenLineage facets of the batch's load (see :func:`redshift_ingest.lineage.copy_facets`): every
        S3 object the COPYs read as inputs, the target table (with its schema) as output, the rows
        loaded and rejected of the batch as statistics."""
        from redshift_ingest import lineage

        facts = getattr(self, "_lineage", None)
        if not facts or not facts["inputs"]:
            return None
        connection = facts["connection"]
        return lineage.copy_facets(
            facts["inputs"],
            facts["table"],
            facts["columns"],
            facts["rows_loaded"],
            facts["rows_rejected"],
            host=connection.host,
            port=connection.port,
            database=connection.schema,
            size_bytes=facts["size_bytes"],
            file_id=facts["file_id"],
            replaced_table=facts["replaced_table"],
        )

    def _single(self, results: list[dict[str, Any]], failed: list[FileFailure], outcome) -> dict[str, Any]:
        """One file given as ``claimed_file``: its result, or the exception a one-file load raises."""
        if failed:
            failure = failed[0]
            load = failure.load
            rejected = LoadResult(
                rows_loaded=0,
                rows_rejected=load.rows_rejected if load else 0,
                copy_query_id=load.copy_query_id if load else None,
                first_error=load.first_error if load else None,
                error_report_key=load.error_report_key if load else None,
                file_id=failure.file.file_id,
            )
            if failure.kind == "newer_version":
                raise NewerVersionLoaded(failure.message)
            if failure.kind == "changed":
                raise ObjectChanged(failure.message)
            raise LoadRejected(failure.message, rejected)
        result = dict(results[0])
        result["rows_replaced"] = outcome.rows_replaced if outcome else 0
        return result

    @staticmethod
    def _alert_columns_added(
        ft: FileType, settings: Settings, context: Context, files, added: dict[str, list[str]]
    ) -> None:
        """``on_schema_change: add_columns`` changed the table: one alert per file that brought columns."""
        from redshift_ingest.notifications import FileAlert, send_alert

        for f in files:
            if f.file_id in added:
                message = (
                    f"on_schema_change add_columns: added column(s) {', '.join(added[f.file_id])} "
                    f"({ft.new_column_type}) to {ft.target.table} for this file's columns; add them to "
                    f"include/sql/{ft.target.ddl} too"
                )
                alert = FileAlert(ft.name, ft.dag_id, context["run_id"], "COLUMNS_ADDED", f.bucket, f.key)
                send_alert(replace(alert, error_message=message), ft, settings, context)

    @staticmethod
    def _set_aside(
        file_type: FileType, conn, settings: Settings, row: dict[str, Any], run_id: str, failure: FileFailure
    ) -> None:
        """Record a file the batch set aside: changed -> FILTERED_OUT; bad data -> FAILED and
        quarantined; an older version -> FAILED, kept where it is."""
        from redshift_ingest import register, tasks

        if failure.kind == "changed":
            register.mark_changed(conn, settings, row["file_id"], run_id, failure.message)
            return
        metrics.file_failed(file_type.name, failure.load.rows_rejected if failure.load else None)
        tasks.fail_file(
            conn,
            settings,
            row,
            run_id,
            failure.message,
            quarantine=failure.kind in ("data", "empty"),
            load=failure.load,
        )


# -- plain arguments --------------------------------------------------------------------------

#: Object-name suffix -> COPY compression (``compression: auto``).
_SUFFIX_COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".zst": "zstd", ".zstd": "zstd"}


def plain_file_type(table: str, format: str, copy_options: dict[str, Any] | CopyOptions) -> FileType:
    """The file type a plain COPY loads as: only ``table``, ``format`` and ``copy_options`` count
    (append, no ``file_id`` column, no register, no DDL: the table must exist).

    :raises LoadConfigError: the table name, the format or a COPY option is invalid; the message
        names the argument (``copy_options.delimiter: ...``).
    """
    try:
        name = TableName.parse(table)
    except (ValueError, AttributeError) as err:
        raise LoadConfigError(f"table: {err}") from err
    try:
        return FileType(
            name="copy_into_target",
            owner="copy_into_target",
            source={"prefix": "plain/"},
            target={"table": name, "ddl": "ddl/none.sql"},  # never read: the table must exist
            format=format,
            copy_options=copy_options,
        )
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'format'}: {e['msg']}" for e in err.errors())
        raise LoadConfigError(f"CopyIntoTargetOperator arguments: {problems}") from err


def register_file_type(file_type: FileType, table: str, format: str, copy_options: dict[str, Any]) -> FileType:
    """``file_type`` with the operator's rendered ``table``, ``format`` and ``copy_options`` (register mode):
    the file type keeps its register policy (DDL, ``file_id`` column, load mode), the COPY runs with the
    arguments.

    :raises LoadConfigError: an argument is invalid (the message names it, as in plain mode).
    """
    checked = plain_file_type(table, format, copy_options)
    if (checked.target.table, checked.format, checked.copy_options) == (
        file_type.target.table,
        file_type.format,
        file_type.copy_options,
    ):
        return file_type
    data = file_type.model_dump()
    data["target"]["table"] = str(checked.target.table)
    data.update(format=checked.format, copy_options=checked.copy_options.model_dump())
    try:
        return FileType.model_validate(data)
    except ValidationError as err:
        raise LoadConfigError(f"CopyIntoTargetOperator arguments for file type {file_type.name}: {err}") from err


def _urls(s3_urls: list[str] | str, mandatory: list[bool] | None = None) -> list[tuple[str, bool]]:
    """``(url, mandatory)`` of each object; every object at most once.

    :raises LoadConfigError: an object is named twice.
    """
    urls = [s3_urls] if isinstance(s3_urls, str) else list(s3_urls)
    if len(set(urls)) != len(urls):
        repeated = sorted({u for u in urls if urls.count(u) > 1})
        raise LoadConfigError(f"an object is named more than once: {repeated[:3]}")
    return list(zip(urls, mandatory or [True] * len(urls), strict=True))


def _manifest_urls(s3, manifest: str) -> list[tuple[str, bool]]:
    """The entries of a Redshift manifest, ``(url, mandatory)``.

    :raises LoadConfigError: it cannot be read, or is not a manifest.
    """
    from botocore.exceptions import ClientError

    bucket, key = _split(manifest)
    try:
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        entries = body["entries"]
        urls = [(e["url"], bool(e.get("mandatory", False))) for e in entries]
    except ClientError as err:
        raise LoadConfigError(f"cannot read manifest {manifest}: {err}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise LoadConfigError(
            f'{manifest} is not a Redshift manifest ({{"entries": [{{"url": "s3://...", "mandatory": true}}]}}): '
            f"{err!r}"
        ) from err
    return _urls([u for u, _ in urls], [m for _, m in urls])


def _split(url: str) -> tuple[str, str]:
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise LoadConfigError(f"expected an s3://bucket/key URL, got {url!r}")
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise LoadConfigError(f"expected an s3://bucket/key URL of one object, got {url!r}")
    return bucket, key


def _head_all(s3, urls: list[tuple[str, bool]], compression: str) -> list[BatchFile]:
    """HEAD every object (in parallel): each becomes a :class:`BatchFile` with its ETag and size,
    checked again before the commit. A missing object is an error, an optional manifest entry skipped.

    :raises LoadConfigError: a URL is not ``s3://bucket/key``, or an object is missing.
    """
    from botocore.exceptions import ClientError

    from redshift_ingest.batch_load import S3_CONCURRENCY, BatchFile

    def head(item: tuple[str, bool]) -> BatchFile | None:
        url, mandatory = item
        bucket, key = _split(url)
        try:
            found = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            if not mandatory:
                log.info('%s: no such object, skipped ("mandatory": false in the manifest)', url)
                return None
            raise LoadConfigError(f"{url}: no such object (HEAD 404); nothing was loaded") from err
        suffix = next((s for s in _SUFFIX_COMPRESSION if key.lower().endswith(s)), None)
        chosen = (_SUFFIX_COMPRESSION.get(suffix or "") if compression == "auto" else compression) or None
        return BatchFile(
            file_id=url,
            bucket=bucket,
            key=key,
            etag=found["ETag"].strip('"'),
            size_bytes=found["ContentLength"],
            entries=(url,),
            compression=None if chosen == "none" else chosen,
        )

    with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
        return [f for f in pool.map(head, urls) if f is not None]


def _plain_file(url: str, load: FileLoad) -> dict[str, Any]:
    return {
        "url": url,
        "rows_loaded": load.rows_loaded,
        "rows_rejected": load.rows_rejected,
        "first_error": load.first_error,
        "copy_query_id": load.copy_query_id,
    }


def _skipped(failure: FileFailure) -> dict[str, Any]:
    from redshift_ingest.batch_load import FileLoad

    load = failure.load or FileLoad(failure.file.file_id, 0, 0, None)
    return {**_plain_file(failure.file.url, load), "rows_loaded": 0, "reason": failure.message}


def _plain_failure(failures: list[FileFailure], file_type: FileType) -> Exception:
    """The exception of a plain COPY whose files were at fault: the first one's message first."""
    first = failures[0]
    more = f" ({len(failures) - 1} more file(s) at fault)" if len(failures) > 1 else ""
    message = f"{first.message}{more}; nothing was loaded into {file_type.target.table}"
    if first.kind == "changed":
        return ObjectChanged(message)
    load = first.load
    return LoadRejected(
        message,
        LoadResult(
            rows_loaded=0,
            rows_rejected=load.rows_rejected if load else 0,
            copy_query_id=load.copy_query_id if load else None,
            first_error=load.first_error if load else None,
            file_id=first.file.url,
        ),
    )


# -- register mode ----------------------------------------------------------------------------


def _batch_file(row: dict[str, Any], prepared: dict[str, Any] | None) -> BatchFile:
    from redshift_ingest.batch_load import BatchFile

    url = f"s3://{row['bucket']}/{row['s3_key']}"
    return BatchFile(
        file_id=row["file_id"],
        bucket=row["bucket"],
        key=row["s3_key"],
        etag=row["etag"],
        size_bytes=row["size_bytes"],
        entries=tuple(prepared["entries"]) if prepared and prepared.get("entries") else (url,),
        compression=(prepared or {}).get("compression"),
        last_modified=row["last_modified"],
        registered_at=row["registered_at"],
        header=tuple(prepared["header"]) if prepared and prepared.get("header") else None,
    )


def _result(row: dict[str, Any], file_id: str, *, loaded_before: bool) -> dict[str, Any]:
    return LoadResult(
        rows_loaded=row["rows_loaded"],
        rows_rejected=row["rows_rejected"] or 0,
        copy_query_id=row["copy_query_id"],
        first_error=row["first_error"],
        error_report_key=row["error_report_key"],
        already_loaded=loaded_before,
        file_id=file_id,
    ).to_xcom()


class _LeaseKeeper:
    """Keeps a run's leases alive while a long step runs (own connection, every third of the lease,
    at most every minute), so the reaper never takes back a claim whose step is still running.

    While the load's own transaction is open (:meth:`held`) it renews nothing: that transaction
    updates the same register rows when it records the loads, and on Redshift a row written by
    another session after the transaction began fails it with a serializable isolation violation
    (error 1023; AWS "Serializable isolation"). :meth:`held` renews every lease to a full
    ``lease_minutes`` (committed) just before the transaction begins instead: a COPY transaction
    longer than ``lease_minutes`` may be reaped (its commit then finds the claim gone and rolls back;
    nothing is loaded twice), so keep ``lease_minutes`` above the longest COPY.
    """

    def __init__(self, settings: Settings, run_id: str, file_ids: list[str]) -> None:
        self.settings = settings
        self.run_id = run_id
        self.file_ids = file_ids
        self.interval = min(60.0, settings.lease.total_seconds() / 3)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # held while renewing and while the load's transaction is open
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        if self.file_ids:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Around one load transaction: renew now, then no renewal until it ends."""
        with self._lock:
            self._renew()
            yield

    def _renew(self) -> None:
        from redshift_ingest import register
        from redshift_ingest.hooks.warehouse import WarehouseHook

        conn = WarehouseHook(warehouse_conn_id=self.settings.warehouse_conn_id).get_conn()
        try:
            register.renew_leases(conn, self.settings, self.run_id, self.file_ids)
        finally:
            conn.close()

    def _run(self) -> None:
        import logging

        log = logging.getLogger(__name__)
        while not self._stop.wait(self.interval):
            with self._lock:
                try:
                    self._renew()
                except Exception:
                    log.exception("Could not renew the leases of run %s (will try again)", self.run_id)
