"""The steps of an ingest DAG run, as plain functions the DAG factory wraps in ``@task``.

Each takes the file type, the settings and what earlier steps returned (XCom: ids, keys, counts;
never secrets), checks the register before acting, and is safe to repeat.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from redshift_ingest import metrics, paths, register, run_notes
from redshift_ingest.assets import asset_for
from redshift_ingest.batch_load import S3_CONCURRENCY, FileLoad, object_change, table_columns
from redshift_ingest.config import FileType, Settings, quote_identifier
from redshift_ingest.errors import FileDataError, LoadConfigError, Policy, RunHadFailures, policy_of
from redshift_ingest.hooks.warehouse import WarehouseHook
from redshift_ingest.notifications import BatchAlert, FileAlert, FileLine, send_alert
from redshift_ingest.prepare import FileRejected, PrepareSpec
from redshift_ingest.prepare import prepare_file as prepare
from redshift_ingest.prepare.staging import staging_root
from redshift_ingest.replay import hold_claim, replay, restore_for_reload
from redshift_ingest.s3_objects import ObjectConflict, ObjectMissing, move_object, refusal, s3_hook
from redshift_ingest.sql import render

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)


def _warehouse(settings: Settings):
    return WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()


def run_request(params: Mapping[str, Any]) -> tuple[str | None, bool]:
    """What a run was triggered with: the ``file_id`` to load (None: wait for NEW files) and ``force``.

    The ingest DAGs declare no params (see :mod:`redshift_ingest.dag_factory`): the request is the run's
    conf (Trigger Dag's configuration JSON, the File register view, the REST API), which can carry any
    value, so it is checked here. Keys other than ``file_id`` and ``force`` are ignored.

    :param params: the run's params (``context["params"]``: the run's conf, with Airflow's default
        ``core.dag_run_conf_overrides_params = True``); a scheduled run has neither key.
    :returns: ``(file_id, force)``; a blank ``file_id`` is None.
    :raises AirflowFailException: ``file_id`` is not a string or null, ``force`` is not true or false,
        or ``force`` is given without a ``file_id``.
    """
    file_id, force = params.get("file_id"), params.get("force", False)
    if file_id is not None and not isinstance(file_id, str):
        raise AirflowFailException(
            f"file_id must be a string (a file_id of the register) or null, got a {type(file_id).__name__}"
        )
    if force is None:
        force = False
    if not isinstance(force, bool):
        raise AirflowFailException(f"force must be true or false, got a {type(force).__name__}")
    file_id = (file_id or "").strip() or None
    if force and not file_id:
        raise AirflowFailException("force reloads one file: give its file_id too")
    return file_id, force


def claim_files(file_type: FileType, settings: Settings, context: dict[str, Any]) -> list[dict[str, Any]]:
    """Claim what this run loads: a batch, the newest file, or the file the run's conf names.

    - ``file_id`` in the run's conf: that one file (a FAILED one is first replayed, see
      :mod:`redshift_ingest.replay`); with ``force`` too, a DONE file is reloaded: its object comes
      back from the archive and the COPY replaces its rows (file-scoped, by
      ``target.file_id_column``; the whole table for ``load_mode: replace``).
    - ``selection: latest``: the newest NEW file (older NEW ones become FILTERED_OUT).
    - ``selection: all``: the oldest NEW files, up to ``batch.max_files`` and ``batch.max_bytes``
      (:func:`register.claim_batch`).
    - A retry or a cleared task of a run gets that run's own files again (whatever their status;
      :func:`hold_files` takes back the ones it failed) and claims nothing new.

    :returns: the claimed files as dicts (XCom), in load order.
    :raises AirflowSkipException: nothing to claim (another run took it): the run ends skipped.
    :raises AirflowFailException: the conf is not a valid request (:func:`run_request`), or its
        ``file_id`` names a file that cannot be rerun.
    """
    file_id, force = run_request(context["params"])
    run_id = context["run_id"]
    conn = _warehouse(settings)
    try:
        ran = register.files_of_run(conn, settings, file_type.name, run_id)
        if ran:  # a retry or a cleared task of this run: its own files again, never new ones
            rows = register.run_files(conn, settings, run_id, ran)
            log.info("This run's %d file(s) again: each step resumes where the last attempt stopped", len(rows))
            return [register.claimed_from_row(row).to_xcom() for row in rows]
        if file_id:
            row = register.get_file(conn, settings, file_id)
            conn.rollback()
            if row and row["status"] == register.FAILED and row["file_type"] == file_type.name:
                replay(conn, settings, file_id)  # back from quarantine, FAILED -> NEW, history kept
            loaded = row and row["status"] in register.LOADED
            if force and loaded and row is not None and row["file_type"] == file_type.name:
                _check_reloadable(file_type)
                restore_for_reload(settings, row)  # back from the archive; the claim below reloads it
        if file_id or file_type.selection == "latest":
            one = register.claim_file(
                conn,
                settings,
                file_type=file_type.name,
                selection=file_type.selection,
                dag_id=context["dag"].dag_id,
                run_id=run_id,
                file_id=file_id,
                reload=force,
            )
            claimed = [one] if one else []
        else:
            claimed = register.claim_batch(
                conn,
                settings,
                file_type=file_type.name,
                dag_id=context["dag"].dag_id,
                run_id=run_id,
                max_files=file_type.batch.max_files,
                max_bytes=file_type.batch.max_bytes,
            )
    except (ValueError, ObjectMissing, ObjectConflict) as err:
        raise AirflowFailException(str(err)) from err
    finally:
        conn.close()
    if not claimed:
        raise AirflowSkipException(f"no NEW {file_type.name} file to claim")
    size = sum(c.size_bytes or 0 for c in claimed)
    log.info("Claimed %d file(s), %s bytes: %s", len(claimed), f"{size:,}", _keys(claimed))
    return [c.to_xcom() for c in claimed]


def _keys(claimed: list[register.ClaimedFile], most: int = 5) -> str:
    shown = ", ".join(repr(c.url) for c in claimed[:most])
    return shown + (f" and {len(claimed) - most} more" if len(claimed) > most else "")


def claims_of(claimed: list[dict[str, Any]] | dict[str, Any]) -> list[register.ClaimedFile]:
    """The claim step's XCom: a list of claimed files (a dict is one file, as older runs passed it)."""
    if isinstance(claimed, dict):
        claimed = [claimed]
    return [register.ClaimedFile.from_xcom(c) for c in claimed or []]


def hold_files(conn, settings: Settings, claims: list[register.ClaimedFile], run_id: str) -> list[dict[str, Any]]:
    """What each step does first: this run's files as the register has them, leases renewed.

    A file this run failed is taken back (out of quarantine if it went there) when the whole step
    had failed (it is not quarantined), or when the run loads that one file: clearing a failed task
    in the UI resumes the work. A batch's files quarantined for their own data stay FAILED; they
    come back by replay (``file_id`` in a run's conf, replay command, register view).

    :returns: the register rows of the files the run holds (IN_PROGRESS) or finished (DONE...),
        in load order; files another run or the reaper took are left out, with a warning.
    """
    ids = [c.file_id for c in claims]
    rows = register.run_files(conn, settings, run_id, ids)
    held = []
    for row in rows:
        resumable = row["quarantine_key"] is None or len(claims) == 1
        if row["status"] == register.FAILED and resumable:
            row = hold_claim(conn, settings, row["file_id"], run_id)
        if row["status"] in (register.IN_PROGRESS, *register.LOADED):
            held.append(row)
    lost = set(ids) - {row["file_id"] for row in rows}
    if lost:
        log.warning("%d file(s) of this run are no longer its own (reaped or rerun elsewhere)", len(lost))
    register.renew_leases(conn, settings, run_id, [r["file_id"] for r in held if r["status"] == register.IN_PROGRESS])
    return held


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


class FileUnusable(FileDataError):
    """The file itself cannot be loaded (found by the prepare step): not retried, quarantined."""


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
        json_ignorecase=opts.json_paths == "auto ignorecase",
        zip_members=file_type.prepare.zip_members,
    )


def prepare_files(
    file_type: FileType, settings: Settings, claimed: list[dict[str, Any]], context: dict[str, Any]
) -> list[dict[str, Any]]:
    """Check each claimed object is still the registered version, validate it, and, only when COPY
    cannot read it as is, stage a COPY-able copy (zip members, JSON arrays, encodings: see
    :mod:`redshift_ingest.prepare`). Files are prepared in parallel (``S3_CONCURRENCY``).

    A file that fails its checks is FAILED and quarantined on its own; one whose object changed
    since registration is FILTERED_OUT (the newer upload is its own file); the rest go on.

    :returns: one dict per file that goes on to the COPY: ``{"file_id", "entries": [s3 URLs COPY
        reads], "compression", "staged_keys", "detected", "already_loaded", "header"}`` (header: the
        file's column names, for ``on_schema_change``: its CSV header or its first JSON record's keys;
        None without one).
    :raises RunHadFailures: every file of the run failed here (nothing goes on).
    """
    claims = claims_of(claimed)
    run_id = context["run_id"]
    conn = _warehouse(settings)
    s3 = s3_hook(settings.aws_conn_id).get_conn()
    try:
        rows = hold_files(conn, settings, claims, run_id)
        todo = [r for r in rows if r["status"] == register.IN_PROGRESS and r["loaded_at"] is None]
        out = [
            {
                "file_id": r["file_id"],
                "entries": [],
                "compression": None,
                "staged_keys": [],
                "detected": "already loaded",
                "already_loaded": True,
            }
            for r in rows
            if r["status"] == register.IN_PROGRESS and r["loaded_at"] is not None
        ]
        spec = prepare_spec(file_type)
        with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
            results = list(pool.map(lambda r: _prepare_one(s3, file_type, settings, spec, r), todo))
        failed = 0
        for row, (prepared, change, rejection) in zip(todo, results, strict=True):
            url = f"s3://{row['bucket']}/{row['s3_key']}"
            if change:
                register.mark_changed(conn, settings, row["file_id"], run_id, change)
                failed += 1
            elif rejection:
                fail_file(conn, settings, row, run_id, f"{rejection} | file {url}", quarantine=True)
                metrics.file_failed(file_type.name)
                failed += 1
            else:
                if prepared.staged_keys:
                    register.record_staged(conn, settings, row["file_id"], prepared.copy_from)
                entries = (
                    [f"s3://{row['bucket']}/{k}" for k in prepared.staged_keys[:-1]]
                    if prepared.manifest
                    else [prepared.copy_from]
                )
                out.append(
                    {
                        "file_id": row["file_id"],
                        "entries": entries,
                        "compression": prepared.compression,
                        "staged_keys": list(prepared.staged_keys),
                        "detected": prepared.detected,
                        "already_loaded": False,
                        "header": list(prepared.header) if prepared.header is not None else None,
                    }
                )
    finally:
        conn.close()
    log.info("Prepared %d file(s); %d failed their checks or changed", len(out), failed)
    if failed and not out:
        raise RunHadFailures(f"every file of this run failed its checks ({failed})", alerted=False)
    return out


def _prepare_one(s3, file_type: FileType, settings: Settings, spec: PrepareSpec, row: dict[str, Any]):
    """(prepared, change message, rejection message) of one file; exactly one is not None."""
    try:
        paths.check_key_fits(settings, row["s3_key"])
    except paths.KeyTooLong as err:
        return None, None, f"cannot be loaded: {err}"
    change = object_change(s3, row["bucket"], row["s3_key"], row["etag"], row["size_bytes"])
    if change:
        return None, change, None
    try:
        prepared = prepare(s3, row["bucket"], row["s3_key"], settings.staging_prefix, spec)
    except FileRejected as err:
        return None, None, str(err)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # Retried like any step error (space may free up); the message says what a person can do.
        raise OSError(
            err.errno,
            f"{err.strerror} in the worker's temp directory {tempfile.gettempdir()} (TMPDIR) while staging a "
            f"prepared copy of s3://{row['bucket']}/{row['s3_key']}: free space there or point TMPDIR at a "
            "larger disk, then replay the file (the file itself is fine)",
        ) from err
    declared = None if file_type.compression == "none" else file_type.compression
    if file_type.compression != "auto" and not prepared.staged_keys and prepared.compression != declared:
        return (
            None,
            None,
            (
                f"the file type declares compression {file_type.compression}, "
                f"found {prepared.compression or 'none'} ({prepared.detected})"
            ),
        )
    return prepared, None, None


def fail_file(
    conn,
    settings: Settings,
    row: dict[str, Any],
    run_id: str,
    message: str,
    *,
    quarantine: bool,
    load: FileLoad | None = None,
) -> None:
    """Mark one file of the run FAILED now (its batch goes on), quarantining it when its data is at
    fault and clearing what was staged for it."""
    hook = s3_hook(settings.aws_conn_id)
    quarantine_key = None
    if quarantine:
        quarantine_key, why = _quarantine(hook, settings, row["bucket"], row["s3_key"])
        if quarantine_key is None:
            message += (
                f" | could not quarantine it ({why}): it stays at s3://{row['bucket']}/{row['s3_key']}; let the "
                f"Airflow role put objects under {settings.quarantine_prefix} and delete them from landing"
            )
    _clear_staging(hook, settings, row["bucket"], row["s3_key"])
    register.mark_failed(
        conn,
        settings,
        row["file_id"],
        run_id,
        message,
        first_error=load.first_error if load else None,
        rows_rejected=load.rows_rejected if load else None,
        copy_query_id=load.copy_query_id if load else None,
        error_report_key=load.error_report_key if load else None,
        quarantine_key=quarantine_key,
    )


def _quarantine(hook: S3Hook, settings: Settings, bucket: str, key: str) -> tuple[str | None, str | None]:
    """Move a bad object to the quarantine prefix: ``(quarantine key, None)``, or ``(None, why)``
    when S3 refused or failed (logged; the object stays where it is and the file is FAILED anyway)."""
    try:
        return move_object(hook, bucket, key, paths.quarantine_key(settings, key)), None
    except Exception as err:
        log.exception("Could not quarantine s3://%s/%s; it stays where it is", bucket, key)
        return None, refusal(err) or f"{type(err).__name__}: {err}"


def _clear_staging(hook: S3Hook, settings: Settings, bucket: str, key: str) -> None:
    """Delete everything any attempt staged for one landed object (one folder)."""
    try:
        staged = hook.list_keys(bucket_name=bucket, prefix=staging_root(settings.staging_prefix, key))
        if staged:
            hook.delete_objects(bucket=bucket, keys=staged)
    except Exception:
        log.exception("Could not clear the staged copies of s3://%s/%s", bucket, key)


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
            cur.execute(render("load/schema_exists.sql"), {"schema": table.schema_name})
            if cur.fetchone() is None:
                cur.execute(render("load/create_schema.sql", schema=quote_identifier(table.schema_name)))
            cur.execute(ddl)
            conn.commit()
            if file_type.target.file_id_column:
                table_columns(cur, file_type)
        conn.rollback()
    finally:
        conn.close()
    return str(table)


def finish_files(
    file_type: FileType, settings: Settings, claimed: list[dict[str, Any]], context: dict[str, Any]
) -> dict[str, Any]:
    """Archive every loaded file of the run (in parallel), mark them DONE / DONE_WITH_REJECTS in one
    statement, clear their staged copies (and the COPY manifests kept there), and send the run's one alert.

    Safe to repeat: a move already done is found done, a finished file is left as it is.

    :returns: ``{"done": n, "done_with_rejects": n, "failed": n, "changed": n}``.
    :raises RunHadFailures: some files of the run failed (after the others were finished and the
        alert went out): the run shows failed in the grid.
    """
    claims = claims_of(claimed)
    run_id = context["run_id"]
    conn = _warehouse(settings)
    hook = s3_hook(settings.aws_conn_id)
    try:
        rows = register.run_files(conn, settings, run_id, [c.file_id for c in claims])
        loaded = [r for r in rows if r["status"] == register.IN_PROGRESS and r["loaded_at"] is not None]
        register.renew_leases(conn, settings, run_id, [r["file_id"] for r in loaded])
        with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
            moved = list(pool.map(lambda r: _archive_one(hook, settings, r), loaded))
        archived = {r["file_id"]: key for r, (key, _) in zip(loaded, moved, strict=True) if key}
        refused = [why for _, why in moved if why]
        register.mark_done_files(conn, settings, run_id, archived)
        for r in loaded:
            if r["file_id"] in archived:
                metrics.file_loaded(
                    file_type.name,
                    rows_loaded=r["rows_loaded"],
                    rows_rejected=r["rows_rejected"],
                    size_bytes=r["size_bytes"],
                    load_duration=(r["loaded_at"] - r["claimed_at"]) if r.get("claimed_at") else None,
                )
        rows = register.run_files(conn, settings, run_id, [c.file_id for c in claims])
    finally:
        conn.close()
    summary = {status.lower(): sum(1 for r in rows if r["status"] == status) for status in _RUN_STATUSES}
    finished = [r for r in rows if r["file_id"] in archived]
    if finished and context.get("outlet_events") is not None:
        # The target table's asset event: what this run loaded into it.
        event = context["outlet_events"][asset_for(file_type, settings)]
        event.extra.update(
            {
                "file_type": file_type.name,
                "files": len(finished),
                "file_ids": [r["file_id"] for r in finished][:100],
                "rows_loaded": sum(r["rows_loaded"] or 0 for r in finished),
                "rows_rejected": sum(r["rows_rejected"] or 0 for r in finished),
                "size_bytes": sum(r["size_bytes"] or 0 for r in finished),
            }
        )
    log.info("Run finished: %s", ", ".join(f"{n} {s}" for s, n in summary.items() if n) or "nothing to finish")
    _note_run(context, rows)
    failed = [r for r in rows if r["status"] in (register.FAILED, register.FILTERED_OUT)]
    rejects = [r for r in rows if r["status"] == register.DONE_WITH_REJECTS and file_type.alerts.on_rejects]
    if failed or rejects:
        send_run_alert(file_type, settings, context, failed + rejects)
    missing = [r for r in loaded if r["file_id"] not in archived]
    if refused:  # permissions or configuration: not retried, the failure callback marks and alerts
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        raise LoadConfigError(
            f"{len(missing)} loaded file(s) could not be archived: {shown} | their rows are loaded and stay "
            f"loaded; let the Airflow role put objects under {settings.archive_prefix} and delete them from "
            "landing, then replay the file(s): they are archived, not loaded again"
        )
    if missing:
        raise AirflowFailException(f"{len(missing)} loaded file(s) could not be archived: {_row_keys(missing)}")
    if failed:
        raise RunHadFailures(f"{len(failed)} file(s) of this run failed: {_row_keys(failed)}", alerted=True)
    return summary


_RUN_STATUSES = (register.DONE, register.DONE_WITH_REJECTS, register.FAILED, register.FILTERED_OUT)


def _note_run(context: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The run's note in the grid: its files and their outcome (best effort; see run_notes)."""
    dag_run = context.get("dag_run")
    if dag_run is not None and rows:
        run_notes.set_run_note(dag_run.dag_id, context["run_id"], run_notes.run_note(rows))


def _row_keys(rows: list[dict[str, Any]], most: int = 5) -> str:
    shown = ", ".join(repr(r["s3_key"]) for r in rows[:most])
    return shown + (f" and {len(rows) - most} more" if len(rows) > most else "")


def _archive_one(hook: S3Hook, settings: Settings, row: dict[str, Any]) -> tuple[str | None, str | None]:
    """Move one loaded object to ``<archive_prefix><key>`` and clear its staged copies.

    :returns: ``(archive key, None)``; ``(None, None)`` when the object is nowhere; ``(None, why)``
        when S3 refused the move for permissions or configuration (both logged; the file stays in
        progress and the step fails after finishing the others). Other S3 errors are raised: retried.
    """
    dest = paths.archive_key(settings, row["s3_key"])
    try:
        key = move_object(hook, row["bucket"], row["s3_key"], dest)
    except ObjectMissing:
        log.exception("Cannot archive s3://%s/%s", row["bucket"], row["s3_key"])
        return None, None
    except Exception as err:
        code = refusal(err)
        if code is None:
            raise
        log.error("S3 refused archiving s3://%s/%s to %s: %s", row["bucket"], row["s3_key"], dest, err)
        return None, f"S3 refused moving s3://{row['bucket']}/{row['s3_key']} to s3://{row['bucket']}/{dest} ({code})"
    _clear_staging(hook, settings, row["bucket"], row["s3_key"])
    return key, None


def run_digest(run_id: str) -> str:
    """16 hex digits naming a run in S3 keys (its COPY manifests): run ids hold characters keys should not."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:16]


def send_run_alert(
    file_type: FileType, settings: Settings, context: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    """One alert for the run, naming every file that failed, changed or had rejected rows (a run of
    one file gets that file's full alert)."""
    if len(rows) == 1:
        send_alert(_alert(file_type, rows[0], context), file_type, settings, context)
        return
    lines = []
    for row in rows:
        where = row.get("quarantine_key") or row.get("archive_key") or row["s3_key"]
        lines.append(
            FileLine(
                key=row["s3_key"],
                status=row["status"],
                rows_loaded=row.get("rows_loaded"),
                rows_rejected=row.get("rows_rejected"),
                first_error=row.get("first_error") or row.get("error_message"),
                location=f"s3://{row['bucket']}/{where}",
            )
        )
    alert = BatchAlert(
        file_type=file_type.name,
        dag_id=context["dag"].dag_id,
        run_id=context["run_id"],
        files=tuple(lines),
        bucket=rows[0]["bucket"],
        run_url=getattr(context.get("ti"), "log_url", None),
    )
    send_alert(alert, file_type, settings, context)


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
    """``on_failure_callback`` of every ingest task: the run's files still in progress go FAILED,
    are kept where they are, and people hear once.

    Files the steps already set aside (bad data: FAILED and quarantined; changed objects:
    FILTERED_OUT) were marked by those steps; this marks what the failed step was still holding,
    with the step's error (the policy of :mod:`redshift_ingest.errors` says whether the file itself
    was at fault: then it is quarantined), and sends one alert listing every failed file of the run,
    unless the step already did (``RunHadFailures.alerted``).

    Runs after the last retry only (Airflow calls ``on_failure_callback`` then), so a transient error
    that a retry cures leaves no trace but the log.
    """

    def __init__(self, file_type: FileType, settings: Settings) -> None:
        self.file_type = file_type
        self.settings = settings

    def __call__(self, context: dict[str, Any]) -> None:
        error = context.get("exception")
        step = getattr(context.get("task"), "step", None)
        where = f"{context['ti'].task_id} failed" + (f" in its {step} step" if step else "")
        message = f"{where}: {type(error).__name__}: {error}" if error else where
        run_id = context["run_id"]
        quarantine = policy_of(error) is Policy.QUARANTINE
        conn = _warehouse(self.settings)
        try:
            file_ids = register.files_of_run(conn, self.settings, self.file_type.name, run_id)
            if not file_ids:
                log.error("No file claimed by this run; nothing to mark: %s", message)
                return
            rows = register.run_files(conn, self.settings, run_id, file_ids)
            marked = 0
            for row in rows:
                if row["status"] != register.IN_PROGRESS:
                    continue
                result = getattr(error, "result", None)
                fail_file(
                    conn,
                    self.settings,
                    row,
                    run_id,
                    message,
                    quarantine=quarantine and row["loaded_at"] is None,
                    load=result if len(rows) == 1 else None,
                )
                metrics.file_failed(self.file_type.name)
                marked += 1
            rows = register.run_files(conn, self.settings, run_id, file_ids)
        finally:
            conn.close()
        failed = [r for r in rows if r["status"] in (register.FAILED, register.FILTERED_OUT)]
        log.error("%d file(s) of this run marked FAILED: %s", marked, message)
        _note_run(context, rows)
        if failed and not getattr(error, "alerted", False):
            send_run_alert(self.file_type, self.settings, context, failed)
