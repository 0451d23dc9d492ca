"""CopyIntoTargetOperator: COPY a run's claimed files into their table, with the rows loaded and
rejected per file, in one transaction."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from redshift_ingest import metrics, paths, register, tasks
from redshift_ingest.batch_load import BatchFile, BatchLoader, FileFailure, LoadError
from redshift_ingest.config import FileType, Settings, default_settings
from redshift_ingest.errors import FileDataError, LoadConfigError, RunHadFailures
from redshift_ingest.hooks.warehouse import WarehouseHook
from redshift_ingest.s3_objects import s3_hook

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["CopyIntoTargetOperator", "LoadError", "LoadRejected", "LoadResult", "NewerVersionLoaded", "ObjectChanged"]


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
    """Load a run's claimed files into their file type's table with Redshift ``COPY``, exactly once.

    Creates the table first when missing (the file type's DDL). Then, on **one connection in one
    transaction**, it COPYs the batch (one manifest COPY, or one COPY per file into a staging table
    when rows carry their ``file_id``: see :mod:`redshift_ingest.batch_load`), reads the rows loaded
    and rejected of every file (``pg_last_copy_count()``, ``STL_LOAD_COMMITS`` / ``SYS_LOAD_DETAIL``,
    ``STL_LOAD_ERRORS`` / ``SYS_LOAD_ERROR_DETAIL``: ``settings.load_errors_source``), and records
    them in the register with one guarded UPDATE. Then it commits: the rows and "loaded" of every
    file become visible together. A retry or a cleared task finds the files loaded and loads nothing.

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

    template_fields: Sequence[str] = ("claimed_files", "prepared")
    ui_color = "#d5e8f5"

    def __init__(
        self,
        *,
        file_type: FileType,
        claimed_files: list[dict[str, Any]] | str | None = None,
        claimed_file: dict[str, Any] | None = None,
        prepared: list[dict[str, Any]] | str | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.file_type = file_type
        self.single = claimed_file is not None
        # Templated: an XCom reference (str) until rendered, then the lists described above.
        self.claimed_files: Any = [claimed_file] if claimed_file is not None else claimed_files
        self.prepared: Any = prepared
        self.settings = settings

    def execute(self, context: Context) -> dict[str, Any]:
        settings = self.settings or default_settings()
        claims = tasks.claims_of(self.claimed_files)
        run_id = context["run_id"]
        tasks.ensure_target_table(self.file_type, settings)
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
            loader = BatchLoader(
                conn,
                s3,
                file_type=self.file_type,
                settings=settings,
                iam_role_arn=hook.iam_role_arn,
                run_id=run_id,
                manifest_tag=tasks.run_digest(run_id),
                error_report_key=lambda f, failed: paths.error_report_key(settings, f.key, quarantined=failed),
            )
            with _LeaseKeeper(settings, run_id, [f.file_id for f in files]):
                try:
                    outcome = loader.load(files) if files else None
                finally:
                    loader.clear_manifests()
            by_id = {r["file_id"]: r for r in todo}
            if outcome and outcome.columns_added:
                self._alert_columns_added(settings, context, files, outcome.columns_added)
            for failure in outcome.failures if outcome else []:
                self._set_aside(conn, settings, by_id[failure.file.file_id], run_id, failure)
            after = {r["file_id"]: r for r in register.run_files(conn, settings, run_id, [c.file_id for c in claims])}
            loaded_ids = {x.file_id for x in outcome.loads} if outcome else set()
            self._lineage = {
                "inputs": [u for f in files if f.file_id in loaded_ids for u in f.entries],
                "rows_loaded": sum(x.rows_loaded for x in outcome.loads) if outcome else 0,
                "rows_rejected": sum(x.rows_rejected for x in outcome.loads) if outcome else 0,
                "size_bytes": sum(f.size_bytes or 0 for f in files if f.file_id in loaded_ids),
                "file_id": next(iter(loaded_ids)) if len(loaded_ids) == 1 else None,
                "connection": hook.get_connection(settings.warehouse_conn_id),
            }
            from redshift_ingest import lineage  # OpenLineage's client: not at DAG parse time

            with conn.cursor() as cur:
                self._lineage["columns"] = lineage.table_columns(cur, str(self.file_type.target.table))
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
                self.file_type.target.table,
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
            str(self.file_type.target.table),
            facts["columns"],
            facts["rows_loaded"],
            facts["rows_rejected"],
            host=connection.host,
            port=connection.port,
            database=connection.schema,
            size_bytes=facts["size_bytes"],
            file_id=facts["file_id"],
            replaced_table=self.file_type.load_mode == "replace",
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

    def _alert_columns_added(self, settings: Settings, context: Context, files, added: dict[str, list[str]]) -> None:
        """``on_schema_change: add_columns`` changed the table: one alert per file that brought columns."""
        from redshift_ingest.notifications import FileAlert, send_alert

        ft = self.file_type
        for f in files:
            if f.file_id in added:
                message = (
                    f"on_schema_change add_columns: added column(s) {', '.join(added[f.file_id])} "
                    f"({ft.new_column_type}) to {ft.target.table} for this file's columns; add them to "
                    f"include/sql/{ft.target.ddl} too"
                )
                alert = FileAlert(ft.name, ft.dag_id, context["run_id"], "COLUMNS_ADDED", f.bucket, f.key)
                send_alert(replace(alert, error_message=message), ft, settings, context)

    def _set_aside(self, conn, settings: Settings, row: dict[str, Any], run_id: str, failure: FileFailure) -> None:
        """Record a file the batch set aside: changed -> FILTERED_OUT; bad data -> FAILED and
        quarantined; an older version -> FAILED, kept where it is."""
        if failure.kind == "changed":
            register.mark_changed(conn, settings, row["file_id"], run_id, failure.message)
            return
        metrics.file_failed(self.file_type.name, failure.load.rows_rejected if failure.load else None)
        tasks.fail_file(
            conn,
            settings,
            row,
            run_id,
            failure.message,
            quarantine=failure.kind in ("data", "empty"),
            load=failure.load,
        )


def _batch_file(row: dict[str, Any], prepared: dict[str, Any] | None) -> BatchFile:
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
    """Renews the leases of a run's files while a long step runs (own connection, every third of the
    lease), so the reaper never takes back a claim whose COPY is still running."""

    def __init__(self, settings: Settings, run_id: str, file_ids: list[str]) -> None:
        self.settings = settings
        self.run_id = run_id
        self.file_ids = file_ids
        self.interval = min(60.0, settings.lease.total_seconds() / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        if self.file_ids:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        import logging

        log = logging.getLogger(__name__)
        while not self._stop.wait(self.interval):
            try:
                conn = WarehouseHook(warehouse_conn_id=self.settings.warehouse_conn_id).get_conn()
                try:
                    register.renew_leases(conn, self.settings, self.run_id, self.file_ids)
                finally:
                    conn.close()
            except Exception:
                log.exception("Could not renew the leases of run %s (will try again)", self.run_id)
