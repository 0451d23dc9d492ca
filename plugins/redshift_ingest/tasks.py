"""The steps of an ingest DAG run, as plain functions the DAG factory wraps in ``@task``.

Each takes the file type, the settings and what earlier steps returned (XCom: ids, keys, counts;
never secrets), checks the register before acting, and is safe to repeat.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from redshift_ingest import register
from redshift_ingest.config import FileType, Settings, quote_identifier
from redshift_ingest.hooks.warehouse import WarehouseHook
from redshift_ingest.notifications import FileAlert, send_alert
from redshift_ingest.operators.copy_into_target import LoadRejected, tagged_table_columns
from redshift_ingest.prepare import FileRejected, PrepareSpec
from redshift_ingest.prepare import prepare_file as prepare
from redshift_ingest.prepare.staging import staging_root
from redshift_ingest.replay import hold_claim, replay, restore_for_reload
from redshift_ingest.s3_objects import ObjectConflict, ObjectMissing, move_object
from redshift_ingest.sql import render

log = logging.getLogger(__name__)


def _warehouse(settings: Settings):
    return WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()


def claim_file(file_type: FileType, settings: Settings, context: dict[str, Any]) -> dict[str, Any]:
    """Claim the file this run loads (see :func:`register.claim_file`).

    :returns: the claimed file as a dict (XCom).
    :raises AirflowSkipException: nothing to claim (another run took it): the run ends skipped.
    :raises AirflowFailException: the ``file_id`` param names a file that cannot be rerun.

    With the ``file_id`` param, a FAILED file is first replayed (see :mod:`redshift_ingest.replay`).
    With ``force`` too, a DONE file is reloaded: its object comes back from the archive and the COPY
    step replaces its rows (file-scoped, by ``target.file_id_column``; the whole table for
    ``load_mode: replace``).
    """
    file_id = (context["params"].get("file_id") or "").strip() or None
    force = bool(context["params"].get("force"))
    if force and not file_id:
        raise AirflowFailException("force reloads one file: give its file_id too")
    conn = _warehouse(settings)
    try:
        resumed = register.failed_claim_of_run(conn, settings, file_type.name, context["run_id"])
        if resumed:  # a cleared claim_file of a run whose attempt failed: take that file back
            row = hold_claim(conn, settings, resumed, context["run_id"])
            log.info("Resumed the claim of %s for this run", row["s3_key"])
            return register.claimed_from_row(row).to_xcom()
        if file_id:
            row = register.get_file(conn, settings, file_id)
            conn.rollback()
            if row and row["status"] == register.FAILED and row["file_type"] == file_type.name:
                replay(conn, settings, file_id)  # back from quarantine, FAILED -> NEW, history kept
            loaded = row and row["status"] in (register.DONE, register.DONE_WITH_REJECTS)
            if force and loaded and row["file_type"] == file_type.name:
                _check_reloadable(file_type)
                restore_for_reload(settings, row)  # back from the archive; the claim below reloads it
        claimed = register.claim_file(
            conn,
            settings,
            file_type=file_type.name,
            selection=file_type.selection,
            dag_id=context["dag"].dag_id,
            run_id=context["run_id"],
            file_id=file_id,
            reload=force,
        )
    except (ValueError, ObjectMissing, ObjectConflict) as err:
        raise AirflowFailException(str(err)) from err
    finally:
        conn.close()
    if claimed is None:
        raise AirflowSkipException(f"no NEW {file_type.name} file to claim")
    log.info("Claimed %s (file_id %s, %s bytes)", claimed.url, claimed.file_id, claimed.size_bytes)
    return claimed.to_xcom()


def _check_reloadable(file_type: FileType) -> None:
    """A forced reload must be able to replace the file's rows exactly.

    :raises AirflowFailException: an ``append`` target without ``target.file_id_column``.
    """
    if file_type.load_mode == "append" and not file_type.target.file_id_column:
        raise AirflowFailException(
            f"file type {file_type.name} appends to {file_type.target.table} without target.file_id_column, "
            "so a reload cannot find the file's earlier rows and would load them twice: add the column "
            "to reload files"
        )


class FileUnusable(AirflowFailException):
    """The file itself cannot be loaded (found by the prepare step): not retried, quarantined."""

    quarantine = True


def prepare_spec(file_type: FileType) -> PrepareSpec:
    """The prepare step's view of a file type (Redshift text format is parsed as delimited text)."""
    opts = file_type.copy_options
    return PrepareSpec(
        file_format="json" if file_type.format == "json" else "csv",
        delimiter=opts.delimiter or ("," if file_type.format == "csv" else "|"),
        quote_char=opts.quote or '"',
        header_lines=opts.ignore_header,
        expected_columns=file_type.prepare.expected_columns,
        encoding=file_type.prepare.encoding,
        invalid_chars=file_type.prepare.invalid_chars,
        json_records_key=file_type.prepare.json_records_key,
        zip_members=file_type.prepare.zip_members,
    )


def prepare_file(
    file_type: FileType, settings: Settings, claimed: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    """Validate the landed object and, only when COPY cannot read it as is, stage a COPY-able copy.

    See :mod:`redshift_ingest.prepare` (zip, JSON arrays, encodings, empty and header-only files,
    header mismatch). The staged location is recorded in the register.

    :returns: ``{"copy_from": s3 URL, "manifest": bool, "compression": str | None,
        "staged_keys": [...], "detected": str}``.
    :raises FileUnusable: the file cannot be loaded; the message says what was expected and found.
    """
    claim = register.ClaimedFile.from_xcom(claimed)
    conn = _warehouse(settings)
    try:
        row = hold_claim(conn, settings, claim.file_id, context["run_id"])
        if row["loaded_at"] is not None:
            # An earlier attempt's COPY committed (the run died after it): the COPY will be skipped,
            # and the object may already be archived. Nothing to prepare.
            log.info("%s is already loaded (COPY query %s): nothing to prepare", claim.url, row["copy_query_id"])
            return {
                "copy_from": claim.url,
                "manifest": False,
                "compression": None,
                "staged_keys": [],
                "detected": "already loaded",
            }
        s3 = S3Hook(aws_conn_id=settings.aws_conn_id).get_conn()
        try:
            prepared = prepare(s3, claim.bucket, claim.key, settings.staging_prefix, prepare_spec(file_type))
        except FileRejected as err:
            raise FileUnusable(f"{claim.url}: {err}") from err
        declared = None if file_type.compression == "none" else file_type.compression
        if file_type.compression != "auto" and not prepared.staged_keys and prepared.compression != declared:
            raise FileUnusable(
                f"{claim.url}: the file type declares compression {file_type.compression}, "
                f"found {prepared.compression or 'none'} ({prepared.detected})"
            )
        compression = prepared.compression
        staged_from = prepared.copy_from if prepared.staged_keys else None
        register.record_staged(conn, settings, claim.file_id, staged_from)
    finally:
        conn.close()
    log.info("Prepared %s: %s; COPY reads %s", claim.url, prepared.detected, prepared.copy_from)
    return {
        "copy_from": prepared.copy_from,
        "manifest": prepared.manifest,
        "compression": compression,
        "staged_keys": list(prepared.staged_keys),
        "detected": prepared.detected,
    }


def ensure_target_table(file_type: FileType, settings: Settings) -> str:
    """Run the file type's DDL (``CREATE TABLE IF NOT EXISTS``, rendered with the quoted target).

    :returns: the target table name.
    :raises AirflowFailException: the table lacks the file type's ``target.file_id_column``.
    """
    table = file_type.target.table
    ddl = render(file_type.target.ddl, target=table.quoted)
    conn = _warehouse(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(table.schema_name)}")
            cur.execute(ddl)
            conn.commit()
            if file_type.target.file_id_column:
                tagged_table_columns(cur, file_type)
        conn.rollback()
    finally:
        conn.close()
    return str(table)


def archive_file(file_type: FileType, settings: Settings, claimed: dict[str, Any], context: dict[str, Any]) -> str:
    """Move the loaded object to ``<archive_prefix><key>``, drop its staged copies, record it; safe to repeat.

    :returns: the archive key.
    :raises AirflowFailException: the file is not loaded yet, or the object is nowhere.
    """
    claim = register.ClaimedFile.from_xcom(claimed)
    conn = _warehouse(settings)
    try:
        row = hold_claim(conn, settings, claim.file_id, context["run_id"])
        if row["loaded_at"] is None:
            raise AirflowFailException(f"{claim.url} is not loaded: refusing to archive it")
        hook = S3Hook(aws_conn_id=settings.aws_conn_id)
        try:
            archive_key = move_object(hook, claim.bucket, claim.key, settings.archive_prefix + claim.key)
        except ObjectMissing as err:
            raise AirflowFailException(str(err)) from err
        # Everything any attempt staged for this object lives under one folder: clear it whole, so a
        # run that died after staging leaves nothing behind either.
        staged = hook.list_keys(bucket_name=claim.bucket, prefix=staging_root(settings.staging_prefix, claim.key))
        if staged:
            hook.delete_objects(bucket=claim.bucket, keys=staged)
        register.record_archive(conn, settings, claim.file_id, archive_key)
    finally:
        conn.close()
    return archive_key


def mark_done(file_type: FileType, settings: Settings, claimed: dict[str, Any], context: dict[str, Any]) -> str:
    """``IN_PROGRESS`` -> ``DONE`` (or ``DONE_WITH_REJECTS``, which alerts when configured).

    :returns: the final status.
    """
    claim = register.ClaimedFile.from_xcom(claimed)
    conn = _warehouse(settings)
    try:
        row = register.get_file(conn, settings, claim.file_id)
        if row and row["status"] in (register.DONE, register.DONE_WITH_REJECTS) and row["run_id"] == context["run_id"]:
            return row["status"]  # a cleared mark_done of a finished run
        hold_claim(conn, settings, claim.file_id, context["run_id"])
        status = register.mark_done(conn, settings, claim.file_id)
        if status is None:
            raise AirflowFailException(f"{claim.url} could not be marked done: it is not loaded")
        row = register.get_file(conn, settings, claim.file_id)
    finally:
        conn.close()
    log.info("%s is %s: %s rows loaded, %s rejected", claim.url, status, row["rows_loaded"], row["rows_rejected"])
    if status == register.DONE_WITH_REJECTS and file_type.alerts.on_rejects:
        send_alert(_alert(file_type, row, context), file_type, settings, context)
    return status


def _alert(file_type: FileType, row: dict[str, Any], context: dict[str, Any], error: str | None = None) -> FileAlert:
    location = row.get("quarantine_key") or row.get("archive_key") or row["s3_key"]
    report = row.get("error_report_key")
    ti = context.get("ti")
    return FileAlert(
        file_type=file_type.name,
        dag_id=context["dag"].dag_id,
        run_id=context["run_id"],
        status=row["status"],
        bucket=row["bucket"],
        key=row["s3_key"],
        size_bytes=row.get("size_bytes"),
        rows_loaded=row.get("rows_loaded"),
        rows_rejected=row.get("rows_rejected"),
        first_error=row.get("first_error"),
        error_message=error or row.get("error_message"),
        file_location=f"s3://{row['bucket']}/{location}",
        error_report=f"s3://{row['bucket']}/{report}" if report else None,
        run_url=getattr(ti, "log_url", None),
    )


class FailureHandler:
    """``on_failure_callback`` of every ingest task: the claimed file goes FAILED, is kept, people hear.

    - The file stays in landing; when the failure is the file's own (its data: COPY above MAXERROR,
      unusable format) it moves to ``<quarantine_prefix><key>`` so other files keep flowing and the
      bad one does not come back until replayed.
    - ``mng`` records the error message, first load error, rows rejected, where the file is.
    - The file type's Slack and/or email channels get the alert.

    Runs after the last retry only (Airflow calls ``on_failure_callback`` then), so a transient error
    that a retry cures leaves no trace but the log.
    """

    def __init__(self, file_type: FileType, settings: Settings) -> None:
        self.file_type = file_type
        self.settings = settings

    def __call__(self, context: dict[str, Any]) -> None:
        error = context.get("exception")
        message = f"{context['ti'].task_id} failed: {type(error).__name__}: {error}" if error else "task failed"
        claimed = context["ti"].xcom_pull(task_ids="claim_file")
        if not claimed:
            log.error("No file claimed by this run; nothing to mark: %s", message)
            return
        claim = register.ClaimedFile.from_xcom(claimed)
        result = getattr(error, "result", None)
        quarantine_key = None
        if isinstance(error, LoadRejected) or getattr(error, "quarantine", False):
            quarantine_key = self._quarantine(claim)
        conn = _warehouse(self.settings)
        try:
            changed = register.mark_failed(
                conn,
                self.settings,
                claim.file_id,
                context["run_id"],
                message,
                first_error=getattr(result, "first_error", None),
                rows_rejected=getattr(result, "rows_rejected", None),
                copy_query_id=getattr(result, "copy_query_id", None),
                error_report_key=getattr(result, "error_report_key", None),
                quarantine_key=quarantine_key,
            )
            row = register.get_file(conn, self.settings, claim.file_id)
        finally:
            conn.close()
        if not changed:
            log.warning("%s was not in progress for this run; register left as %s", claim.url, row and row["status"])
            return
        log.error("%s marked FAILED: %s", claim.url, message)
        send_alert(_alert(self.file_type, row, context, message), self.file_type, self.settings, context)

    def _quarantine(self, claim: register.ClaimedFile) -> str | None:
        hook = S3Hook(aws_conn_id=self.settings.aws_conn_id)
        try:
            return move_object(hook, claim.bucket, claim.key, self.settings.quarantine_prefix + claim.key)
        except Exception:
            log.exception("Could not quarantine %s; it stays where it is", claim.url)
            return None
