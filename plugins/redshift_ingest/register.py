"""The file register (``mng``): one row per S3 object version and its state.

States: ``NEW`` -> ``IN_PROGRESS`` -> ``DONE`` / ``DONE_WITH_REJECTS`` / ``FAILED``; ``NEW`` ->
``FILTERED_OUT`` when a newer file of a ``latest`` file type supersedes it, or a newer upload of the
same key overwrote it before it was loaded; ``DONE`` / ``DONE_WITH_REJECTS`` -> ``REPLACED`` when a
newer version of the same key replaced its rows (``target.on_new_version: replace``); ``UNMATCHED``
for keys no file type matches (recorded, never dropped). Every transition is one guarded ``UPDATE ... WHERE
status = <expected>`` so that two writers cannot both win; inserts and claims run under
``LOCK <register>`` because Redshift has no unique constraints and no ``ON CONFLICT`` (AWS: "Defining
table constraints" — uniqueness is not enforced; "LOCK").

All functions take an open DB-API connection (psycopg2) and do not commit unless they say so:
callers decide the transaction, which is how the COPY and "loaded" commit together.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redshift_ingest.config import Settings
from redshift_ingest.sql import render_register

NEW = "NEW"
IN_PROGRESS = "IN_PROGRESS"
DONE = "DONE"
DONE_WITH_REJECTS = "DONE_WITH_REJECTS"
FAILED = "FAILED"
FILTERED_OUT = "FILTERED_OUT"
UNMATCHED = "UNMATCHED"
REPLACED = "REPLACED"
TERMINAL = frozenset({DONE, DONE_WITH_REJECTS, FAILED, FILTERED_OUT, UNMATCHED, REPLACED})

MAX_ERROR_MESSAGE = 4000  # VARCHAR(4096) holds bytes on Redshift; leave room for multi-byte text


class ClaimLost(RuntimeError):
    """The file is no longer claimed by this run (another run or the reaper took it)."""


@dataclass(frozen=True)
class S3Object:
    """One S3 object version as an event or a listing describes it.

    :param size_bytes: object size in bytes.
    :param etag: the ETag without quotes.
    :param last_modified: UTC, naive.
    """

    bucket: str
    key: str
    size_bytes: int | None = None
    etag: str | None = None
    version_id: str | None = None
    last_modified: datetime | None = None

    @property
    def file_id(self) -> str:
        """Deterministic id: sha256 of bucket, key and version id (or ETag), 64 hex characters.

        The same object version always gets the same id, so a duplicate event registers nothing; a
        new upload under the same key (new ETag / version) is a new file.
        """
        version = self.version_id or (self.etag or "").strip('"')
        return hashlib.sha256(f"{self.bucket}\n{self.key}\n{version}".encode()).hexdigest()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ClaimedFile:
    """What ``claim_file`` hands to the next tasks (through XCom: no secrets, JSON-serialisable)."""

    file_id: str
    file_type: str
    bucket: str
    key: str
    size_bytes: int | None
    etag: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> ClaimedFile:
        return cls(**value)


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
    cur.execute(f"LOCK {settings.register_table.quoted}")


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
    lease_expires_at = datetime.now(UTC).replace(tzinfo=None) + settings.lease
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
            if file_id:
                chosen, status = _rerun_candidate(cur, settings, file_type, file_id, reload)
                from_statuses = (NEW, FAILED)
                if status in (DONE, DONE_WITH_REJECTS):
                    template = "reload_file.sql"
            else:
                order = "DESC" if selection == "latest" else "ASC"
                _execute(cur, settings, "select_candidates.sql", {"file_type": file_type}, order=order)
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


def claimed_from_row(row: dict[str, Any]) -> ClaimedFile:
    """The :class:`ClaimedFile` of a register row (as :func:`get_file` returns it)."""
    return ClaimedFile(
        file_id=row["file_id"],
        file_type=row["file_type"],
        bucket=row["bucket"],
        key=row["s3_key"],
        size_bytes=row["size_bytes"],
        etag=row["etag"],
    )


def _held_claim(cur, settings: Settings, file_type: str, dag_id: str, run_id: str) -> ClaimedFile | None:
    cur.execute(
        f"SELECT file_id FROM {settings.register_table.quoted} "
        "WHERE file_type = %(file_type)s AND status = 'IN_PROGRESS' AND dag_id = %(dag_id)s "
        "AND run_id = %(run_id)s",
        {"file_type": file_type, "dag_id": dag_id, "run_id": run_id},
    )
    row = cur.fetchone()
    if row is None:
        return None
    _execute(cur, settings, "select_file.sql", {"file_id": row[0]})
    values = cur.fetchone()
    return claimed_from_row(dict(zip([d[0] for d in cur.description], values, strict=True)))


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
    lease_expires_at = datetime.now(UTC).replace(tzinfo=None) + settings.lease
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


def failed_claim_of_run(conn, settings: Settings, file_type: str, run_id: str) -> str | None:
    """The file_id this run claimed and failed, if any (a cleared ``claim_file`` resumes it)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT file_id FROM {settings.register_table.quoted} "
            "WHERE file_type = %(file_type)s AND status = 'FAILED' AND run_id = %(run_id)s "
            "ORDER BY finished_at DESC",
            {"file_type": file_type, "run_id": run_id},
        )
        row = cur.fetchone()
    conn.rollback()
    return row[0] if row else None


def resume_failed_claim(conn, settings: Settings, file_id: str, run_id: str) -> bool:
    """``FAILED`` -> ``IN_PROGRESS`` for the run that failed it (a cleared task); commits.

    :returns: False when the file is not FAILED by ``run_id``.
    """
    lease_expires_at = datetime.now(UTC).replace(tzinfo=None) + settings.lease
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
