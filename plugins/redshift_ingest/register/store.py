"""The file register (``mng``) in the warehouse: registering, claiming, leasing and finishing files.

All functions take an open DB-API connection (psycopg2) and do not commit unless they say so:
callers decide the transaction, which is how the COPY and "loaded" commit together. Every statement
is a template in ``include/sql/register``; every status change is one guarded
``UPDATE ... WHERE status = <expected>`` (see :data:`~redshift_ingest.register.model.TRANSITIONS`) so
that two writers cannot both win; inserts and claims run under ``LOCK <register>`` because Redshift
has no unique constraints and no ``ON CONFLICT`` (AWS: "Defining table constraints" — uniqueness is
not enforced; "LOCK").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg2.extras import execute_values

from redshift_ingest.config import Settings
from redshift_ingest.register.model import (
    DONE,
    DONE_WITH_REJECTS,
    FAILED,
    IN_PROGRESS,
    NEW,
    UNMATCHED,
    ClaimedFile,
    ClaimLost,
    S3Object,
    claimed_from_row,
)
from redshift_ingest.sql import render_register

MAX_ERROR_MESSAGE = 4000  # VARCHAR(4096) holds bytes on Redshift; leave room for multi-byte text
BULK_PAGE_ROWS = 500  # rows per multi-row INSERT of a bulk update


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _execute(cur, settings: Settings, template: str, params: dict[str, Any] | None = None, **ids: str):
    cur.execute(render_register(template, settings, **ids), params or {})
    return cur


def ensure_register(conn, settings: Settings) -> None:
    """Create the register schema and table when missing, and commit."""
    with conn.cursor() as cur:
        _execute(cur, settings, "create_register.sql")
    conn.commit()


def lock_register(cur, settings: Settings) -> None:
    """``LOCK`` the register for the rest of the transaction (exclusive on Redshift and PostgreSQL)."""
    _execute(cur, settings, "lock_register.sql")


def register_object(conn, settings: Settings, obj: S3Object, file_type: str | None, registered_by: str) -> bool:
    """Insert one ``NEW`` row (``UNMATCHED`` when ``file_type`` is None), in its own transaction.

    Earlier versions of the same key that are still ``NEW`` become ``FILTERED_OUT`` (COPY can only
    read the current object under a key), as does this one when a newer version is registered.

    :returns: True when inserted, False when the object version was already registered.
    """
    params = {
        "file_id": obj.file_id,
        "file_type": file_type,
        "bucket": obj.bucket,
        "s3_key": obj.key,
        "version_id": obj.version_id,
        "etag": (obj.etag or "").strip('"') or None,
        "size_bytes": obj.size_bytes,
        "last_modified": obj.last_modified,
        "status": NEW if file_type else UNMATCHED,
        "registered_by": registered_by,
        # In microseconds (GETDATE() has whole seconds): it orders versions of a key uploaded in the
        # same second (S3 last-modified has whole seconds too).
        "registered_at": datetime.now(UTC).replace(tzinfo=None),
    }
    try:
        with conn.cursor() as cur:
            lock_register(cur, settings)
            inserted = _execute(cur, settings, "insert_file.sql", params).rowcount == 1
            if inserted and file_type:
                _execute(cur, settings, "supersede_versions.sql", params)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return inserted


def get_file(conn, settings: Settings, file_id: str) -> dict[str, Any] | None:
    """The register row of ``file_id`` as a dict, or None."""
    with conn.cursor() as cur:
        _execute(cur, settings, "select_file.sql", {"file_id": file_id})
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))


def claim_file(
    conn,
    settings: Settings,
    *,
    file_type: str,
    selection: str,
    dag_id: str,
    run_id: str,
    file_id: str | None = None,
    reload: bool = False,
) -> ClaimedFile | None:
    """Claim one file of ``file_type`` for this DAG run, in one transaction under ``LOCK``.

    - A retry or cleared task of the same run that already holds a claim keeps it (lease renewed).
    - ``file_id`` given (a rerun from the UI): that file, when ``NEW`` or ``FAILED``; with ``reload``
      (the ``force`` param) also when ``DONE`` / ``DONE_WITH_REJECTS``: its load is forgotten (kept
      in ``history``) and the COPY runs again, replacing the file's rows.
    - ``selection="latest"``: the newest ``NEW`` file wins, older ``NEW`` ones become
      ``FILTERED_OUT`` with ``superseded_by``; ``"all"``: the oldest ``NEW`` file.

    :returns: the claimed file, or None when there is nothing to claim.
    :raises ValueError: ``file_id`` names a file of another type or in a state that cannot be rerun.
    """
    lease_expires_at = _now() + settings.lease
    try:
        with conn.cursor() as cur:
            lock_register(cur, settings)
            held = _held_claim(cur, settings, file_type, dag_id, run_id)
            if held is not None:
                params = {"file_id": held.file_id, "run_id": run_id, "lease_expires_at": lease_expires_at}
                _execute(cur, settings, "reclaim_file.sql", params)
                conn.commit()
                return held
            template = "claim_file.sql"
            chosen: str | None
            from_statuses: tuple[str, ...]
            if file_id:
                chosen, status = _rerun_candidate(cur, settings, file_type, file_id, reload)
                from_statuses = (NEW, FAILED)
                if status in (DONE, DONE_WITH_REJECTS):
                    template = "reload_file.sql"
            else:
                order = "DESC" if selection == "latest" else "ASC"
                _execute(cur, settings, "select_candidates.sql", {"file_type": file_type, "limit": 1}, order=order)
                row = cur.fetchone()
                chosen = row[0] if row else None
                from_statuses = (NEW,)
            if chosen is None:
                conn.rollback()
                return None
            params = {
                "file_id": chosen,
                "file_type": file_type,
                "dag_id": dag_id,
                "run_id": run_id,
                "lease_expires_at": lease_expires_at,
                "from_statuses": from_statuses,
            }
            if _execute(cur, settings, template, params).rowcount != 1:
                conn.rollback()
                return None
            if selection == "latest" and not file_id:
                _execute(cur, settings, "supersede_files.sql", {"file_id": chosen, "file_type": file_type})
            row = get_file(conn, settings, chosen)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    assert row is not None
    return claimed_from_row(row)


def claim_batch(
    conn,
    settings: Settings,
    *,
    file_type: str,
    dag_id: str,
    run_id: str,
    max_files: int,
    max_bytes: int,
) -> list[ClaimedFile]:
    """Claim a batch of ``NEW`` files of ``file_type``, oldest first, in one transaction under ``LOCK``.

    The batch takes files in registration order while it has fewer than ``max_files`` files and
    their sizes add up to at most ``max_bytes``; the first file is always taken, even when it alone
    is larger (a file is never left behind for being big). A retry or cleared step of the same run
    that already holds files gets those back, leases renewed, and claims nothing new.

    :param max_files: at most this many files (>= 1).
    :param max_bytes: at most this many bytes in all (sizes the register does not know count 0).
    :returns: the claimed files in load order; empty when nothing is ``NEW``.
    """
    lease_expires_at = _now() + settings.lease
    try:
        with conn.cursor() as cur:
            lock_register(cur, settings)
            held = _held_claims(cur, settings, file_type, dag_id, run_id)
            if held:
                params = {
                    "run_id": run_id,
                    "lease_expires_at": lease_expires_at,
                    "file_ids": tuple(f.file_id for f in held),
                }
                _execute(cur, settings, "renew_leases.sql", params)
                conn.commit()
                return held
            params = {"file_type": file_type, "limit": max_files}
            candidates = _rows(_execute(cur, settings, "select_candidates.sql", params, order="ASC"))
            chosen: list[str] = []
            total = 0
            for row in candidates:
                size = row["size_bytes"] or 0
                if chosen and total + size > max_bytes:
                    break
                chosen.append(row["file_id"])
                total += size
            if not chosen:
                conn.rollback()
                return []
            params = {
                "file_ids": tuple(chosen),
                "file_type": file_type,
                "dag_id": dag_id,
                "run_id": run_id,
                "lease_expires_at": lease_expires_at,
            }
            claimed = _execute(cur, settings, "claim_files.sql", params).rowcount
            if claimed != len(chosen):  # cannot happen under LOCK; refuse a partial claim anyway
                conn.rollback()
                raise ClaimLost(f"claimed {claimed} of {len(chosen)} NEW files: another writer changed them")
            held = _held_claims(cur, settings, file_type, dag_id, run_id)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return held


def renew_leases(conn, settings: Settings, run_id: str, file_ids: list[str]) -> int:
    """Heartbeat of a run: renew the lease of each of ``file_ids`` it still holds; commits.

    :returns: how many of them the run still holds.
    """
    if not file_ids:
        return 0
    params = {"run_id": run_id, "lease_expires_at": _now() + settings.lease, "file_ids": tuple(file_ids)}
    with conn.cursor() as cur:
        renewed = _execute(cur, settings, "renew_leases.sql", params).rowcount
    conn.commit()
    return renewed


def run_files(conn, settings: Settings, run_id: str, file_ids: list[str]) -> list[dict[str, Any]]:
    """The register rows of ``file_ids`` that ``run_id`` claimed (whatever their status now), in
    load order; ends the read's transaction."""
    if not file_ids:
        return []
    with conn.cursor() as cur:
        rows = _rows(_execute(cur, settings, "select_run_files.sql", {"run_id": run_id, "file_ids": tuple(file_ids)}))
    conn.rollback()
    return rows


def _bulk_insert(cur, settings: Settings, create: str, insert: str, rows: list[tuple]) -> None:
    """Fill a temporary table (``create`` template) with ``rows`` by multi-row INSERTs."""
    _execute(cur, settings, create)
    execute_values(cur, render_register(insert, settings), rows, page_size=BULK_PAGE_ROWS)


def record_loads(cur, settings: Settings, run_id: str, loads: list[dict[str, Any]]) -> int:
    """In the batch COPY's transaction: record every file's load in one set-based UPDATE.

    :param loads: dicts with ``file_id``, ``copy_query_id``, ``rows_loaded``, ``rows_rejected``,
        ``first_error`` (<= 1,000 characters) and ``error_report_key``.
    :returns: how many files were recorded; fewer than ``len(loads)`` means a guard failed (a file
        is no longer this run's, or already loaded): roll back then, and the COPY with it.
    """
    rows = [
        (
            load["file_id"],
            load["copy_query_id"],
            load["rows_loaded"],
            load["rows_rejected"],
            (load["first_error"] or None) and load["first_error"][:1000],
            load["error_report_key"],
        )
        for load in loads
    ]
    _bulk_insert(cur, settings, "create_batch_results.sql", "insert_batch_results.sql", rows)
    return _execute(cur, settings, "record_loads.sql", {"run_id": run_id}).rowcount


def mark_done_files(conn, settings: Settings, run_id: str, archived: dict[str, str]) -> int:
    """``IN_PROGRESS`` -> ``DONE`` / ``DONE_WITH_REJECTS`` for each loaded file in ``archived``
    (file_id -> archive key), in one transaction; commits.

    :returns: how many files were finished (a file no longer held by ``run_id`` is left alone).
    """
    if not archived:
        return 0
    try:
        with conn.cursor() as cur:
            _bulk_insert(
                cur, settings, "create_batch_archived.sql", "insert_batch_archived.sql", list(archived.items())
            )
            done = _execute(cur, settings, "mark_done_files.sql", {"run_id": run_id}).rowcount
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return done


def mark_changed(conn, settings: Settings, file_id: str, run_id: str, message: str) -> bool:
    """``IN_PROGRESS`` -> ``FILTERED_OUT``: the object is no longer the registered version; commits.

    :returns: False when the file is not in progress (and unloaded) for ``run_id``.
    """
    params = {"file_id": file_id, "run_id": run_id, "error_message": message[:MAX_ERROR_MESSAGE]}
    with conn.cursor() as cur:
        updated = _execute(cur, settings, "mark_changed.sql", params).rowcount
    conn.commit()
    return updated == 1


def _held_claims(cur, settings: Settings, file_type: str, dag_id: str, run_id: str) -> list[ClaimedFile]:
    params = {"file_type": file_type, "dag_id": dag_id, "run_id": run_id}
    return [claimed_from_row(row) for row in _rows(_execute(cur, settings, "select_held_claims.sql", params))]


def _held_claim(cur, settings: Settings, file_type: str, dag_id: str, run_id: str) -> ClaimedFile | None:
    held = _held_claims(cur, settings, file_type, dag_id, run_id)
    return held[0] if held else None


def _rows(cur) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _rerun_candidate(cur, settings: Settings, file_type: str, file_id: str, reload: bool) -> tuple[str, str]:
    _execute(cur, settings, "select_file.sql", {"file_id": file_id})
    row = cur.fetchone()
    if row is None:
        raise ValueError(f"file_id {file_id} is not in the register")
    record = dict(zip([d[0] for d in cur.description], row, strict=True))
    if record["file_type"] != file_type:
        raise ValueError(f"file_id {file_id} is of file type {record['file_type']!r}, not {file_type!r}")
    if record["status"] in (DONE, DONE_WITH_REJECTS) and not reload:
        raise ValueError(
            f"file_id {file_id} is {record['status']}: trigger with force=true to reload it (its rows are replaced)"
        )
    if record["status"] not in (NEW, FAILED, DONE, DONE_WITH_REJECTS):
        raise ValueError(
            f"file_id {file_id} is {record['status']}; only NEW, FAILED or (with force) DONE files can be rerun"
        )
    return file_id, record["status"]


def require_claim(conn, settings: Settings, file_id: str, run_id: str) -> dict[str, Any]:
    """Heartbeat and check: renew the lease of ``run_id``'s claim (committed), return the row.

    Every step calls this first, so a claim whose run died stops being renewed and the reaper
    (:mod:`redshift_ingest.reaper`) can take it back once its lease expires.

    :raises ClaimLost: the file is not ``IN_PROGRESS`` for ``run_id`` (the message gives its state).
    """
    lease_expires_at = _now() + settings.lease
    with conn.cursor() as cur:
        params = {"file_id": file_id, "run_id": run_id, "lease_expires_at": lease_expires_at}
        _execute(cur, settings, "reclaim_file.sql", params)
    conn.commit()
    row = get_file(conn, settings, file_id)
    # End the read's transaction: a step holding it open (through a long prepare) would hold a share
    # lock on the register and block every claim and registration that takes LOCK.
    conn.rollback()
    if row is None or row["status"] != IN_PROGRESS or row["run_id"] != run_id:
        state = "missing" if row is None else f"{row['status']} (run {row['run_id']})"
        raise ClaimLost(f"file {file_id} is no longer claimed by run {run_id}: it is {state}")
    return row


def files_of_run(conn, settings: Settings, file_type: str, run_id: str) -> list[str]:
    """The file_ids of ``file_type`` that ``run_id`` claimed and still names, in load order; ends the read."""
    with conn.cursor() as cur:
        _execute(cur, settings, "select_files_of_run.sql", {"file_type": file_type, "run_id": run_id})
        ids = [row[0] for row in cur.fetchall()]
    conn.rollback()
    return ids


def resume_failed_claim(conn, settings: Settings, file_id: str, run_id: str) -> bool:
    """``FAILED`` -> ``IN_PROGRESS`` for the run that failed it (a cleared task); commits.

    :returns: False when the file is not FAILED by ``run_id``.
    """
    lease_expires_at = _now() + settings.lease
    with conn.cursor() as cur:
        params = {"file_id": file_id, "run_id": run_id, "lease_expires_at": lease_expires_at}
        updated = _execute(cur, settings, "resume_failed_claim.sql", params).rowcount
    conn.commit()
    return updated == 1


def record_staged(conn, settings: Settings, file_id: str, staged_from: str | None) -> None:
    """Record what COPY will read when the prepare step staged the file; commits."""
    with conn.cursor() as cur:
        _execute(cur, settings, "record_staged.sql", {"file_id": file_id, "staged_from": staged_from})
    conn.commit()


def record_load(cur, settings: Settings, file_id: str, run_id: str, **counts: Any) -> bool:
    """In the COPY's transaction: record rows loaded/rejected, query id, first error.

    :returns: False when the guard failed (already loaded, or ``run_id`` no longer holds the claim):
        roll back then, and the COPY with it.
    """
    params = {"file_id": file_id, "run_id": run_id, "error_report_key": None, **counts}
    return _execute(cur, settings, "record_load.sql", params).rowcount == 1


def loaded_versions(cur, settings: Settings, file_id: str, bucket: str, key: str) -> list[dict[str, Any]]:
    """Other versions of ``s3://bucket/key`` whose rows are loaded (not yet ``REPLACED``), oldest first.

    :returns: dicts of ``file_id``, ``status``, ``last_modified``, ``registered_at``, ``rows_loaded``.
    """
    params = {"file_id": file_id, "bucket": bucket, "s3_key": key}
    _execute(cur, settings, "select_loaded_versions.sql", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def mark_replaced(cur, settings: Settings, file_id: str, replaced_by: str, rows_deleted: int) -> bool:
    """In the new version's COPY transaction: ``file_id``'s rows were deleted; it becomes ``REPLACED``.

    :returns: False when it was not loaded or already replaced.
    """
    params = {"file_id": file_id, "replaced_by": replaced_by, "rows_deleted": rows_deleted}
    return _execute(cur, settings, "mark_replaced.sql", params).rowcount == 1


def record_archive(conn, settings: Settings, file_id: str, archive_key: str) -> None:
    """Record where the archived object is; commits."""
    with conn.cursor() as cur:
        _execute(cur, settings, "record_archive.sql", {"file_id": file_id, "archive_key": archive_key})
    conn.commit()


def mark_done(conn, settings: Settings, file_id: str) -> str | None:
    """``IN_PROGRESS`` -> ``DONE`` / ``DONE_WITH_REJECTS``; commits.

    :returns: the new status, or None when the guard failed (not loaded, or not in progress).
    """
    with conn.cursor() as cur:
        updated = _execute(cur, settings, "mark_done.sql", {"file_id": file_id}).rowcount
    conn.commit()
    if not updated:
        return None
    row = get_file(conn, settings, file_id)
    conn.rollback()
    return row["status"] if row else None


def mark_failed(
    conn,
    settings: Settings,
    file_id: str,
    run_id: str,
    error_message: str,
    *,
    first_error: str | None = None,
    rows_rejected: int | None = None,
    copy_query_id: int | None = None,
    error_report_key: str | None = None,
    quarantine_key: str | None = None,
) -> bool:
    """``IN_PROGRESS`` (claimed by ``run_id``) -> ``FAILED`` with the error; commits.

    :returns: False when the file is not in progress for ``run_id`` (nothing changed).
    """
    params = {
        "file_id": file_id,
        "run_id": run_id,
        "error_message": error_message[:MAX_ERROR_MESSAGE],
        "first_error": first_error[:1000] if first_error else None,
        "rows_rejected": rows_rejected,
        "copy_query_id": copy_query_id,
        "error_report_key": error_report_key,
        "quarantine_key": quarantine_key,
    }
    with conn.cursor() as cur:
        updated = _execute(cur, settings, "mark_failed.sql", params).rowcount
    conn.commit()
    return updated == 1


def replay_file(conn, settings: Settings, file_id: str) -> bool:
    """``FAILED`` -> ``NEW`` keeping the earlier attempt in ``history``; commits.

    :returns: False when the file is not ``FAILED``.
    """
    with conn.cursor() as cur:
        updated = _execute(cur, settings, "replay_file.sql", {"file_id": file_id}).rowcount
    conn.commit()
    return updated == 1
