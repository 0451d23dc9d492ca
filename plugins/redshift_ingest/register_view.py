"""What the File register view shows and does, without the web layer (see :mod:`redshift_ingest.register_app`).

Reads: files filtered by file type, status, registration time and key (:func:`list_files`), one
file with its history and locations (:func:`file_detail`), the backlog per file type
(:func:`backlog`). Actions: :func:`replay_request` and :func:`bulk_replay_selection` check that a
file can be replayed (FAILED) or force-reloaded (DONE / DONE_WITH_REJECTS) and say which DAG run to
trigger with which conf; the run itself does the work, through the same code as the ``file_id`` /
``force`` params of the ingest DAGs (``tasks.claim_file`` -> :mod:`redshift_ingest.replay`).

Rows are dicts of the register's columns, whatever they are (``SELECT *``): columns added later
(e.g. ``batch_id``) are carried along and shown, never required.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redshift_ingest import register
from redshift_ingest.config import FileType, Settings
from redshift_ingest.health import file_type_health
from redshift_ingest.sql import render_register

STATUSES = (
    register.NEW,
    register.IN_PROGRESS,
    register.DONE,
    register.DONE_WITH_REJECTS,
    register.FAILED,
    register.FILTERED_OUT,
    register.REPLACED,
    register.UNMATCHED,
)
RELOADABLE = frozenset({register.DONE, register.DONE_WITH_REJECTS})
MAX_ROWS = 500  # files per page of the view
MAX_BULK = 200  # files one bulk replay may trigger


class ActionRefused(ValueError):
    """The action does not apply to this file (unknown, wrong state, unknown file type): the message says why."""


@dataclass(frozen=True)
class FileFilter:
    """Filters of the view; None switches one off. Times are naive UTC (the register's)."""

    file_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    key_contains: str | None = None
    limit: int = MAX_ROWS

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; one of {', '.join(STATUSES)}")
        if not 1 <= self.limit <= MAX_ROWS:
            raise ValueError(f"limit must be 1..{MAX_ROWS}, got {self.limit}")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("'since' must be before 'until'")


def _rows(cur) -> list[dict[str, Any]]:
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def list_files(conn, settings: Settings, filters: FileFilter) -> list[dict[str, Any]]:
    """Register rows matching ``filters``, newest registration first, at most ``filters.limit``."""
    params = {
        "file_type": filters.file_type,
        "status": filters.status,
        "since": filters.since,
        "until": filters.until,
        "key_contains": filters.key_contains or None,
        "limit": filters.limit,
    }
    with conn.cursor() as cur:
        cur.execute(render_register("select_register_files.sql", settings), params)
        rows = _rows(cur)
    conn.rollback()
    return rows


def history_lines(row: Mapping[str, Any]) -> list[str]:
    """The ``history`` column (earlier attempts, one line each), oldest first."""
    return [line for line in (row.get("history") or "").splitlines() if line.strip()]


def s3_url(bucket: str | None, key: str | None) -> str | None:
    return f"s3://{bucket}/{key}" if bucket and key else None


def locations(row: Mapping[str, Any]) -> dict[str, str | None]:
    """Where the file and its reports are: landing, staged copy, archive, quarantine, error report."""
    bucket = row.get("bucket")
    return {
        "landing": s3_url(bucket, row.get("s3_key")),
        "staged": row.get("staged_from"),
        "archive": s3_url(bucket, row.get("archive_key")),
        "quarantine": s3_url(bucket, row.get("quarantine_key")),
        "error_report": s3_url(bucket, row.get("error_report_key")),
    }


def run_path(row: Mapping[str, Any]) -> str | None:
    """The Airflow UI path of the DAG run that last claimed the file, or None."""
    from urllib.parse import quote

    if not row.get("dag_id") or not row.get("run_id"):
        return None
    return f"/dags/{quote(row['dag_id'], safe='')}/runs/{quote(row['run_id'], safe='')}"


def file_detail(conn, settings: Settings, file_id: str) -> dict[str, Any] | None:
    """One file: every register column, plus ``history_lines``, ``locations``, ``run_path``."""
    with conn.cursor() as cur:
        cur.execute(render_register("select_register_file.sql", settings), {"file_id": file_id})
        rows = _rows(cur)
    conn.rollback()
    if not rows:
        return None
    row = rows[0]
    return {**row, "history_lines": history_lines(row), "locations": locations(row), "run_path": run_path(row)}


def backlog(conn, settings: Settings, file_types: Iterable[FileType], now: datetime) -> list[dict[str, Any]]:
    """Per file type: NEW files, the oldest NEW file's age (seconds, None when none), in progress,
    FAILED, the last arrival, and its DAG id."""
    types = list(file_types)
    dag_ids = {ft.name: ft.dag_id for ft in types}
    result = []
    for state in file_type_health(conn, settings, types):
        age = state.oldest_new_age(now)
        result.append(
            {
                "file_type": state.file_type,
                "dag_id": dag_ids[state.file_type],
                "new_files": state.new_files,
                "oldest_new_age_seconds": None if age is None else int(age.total_seconds()),
                "oldest_new_at": state.oldest_new_at,
                "in_progress": state.in_progress,
                "failed_files": state.failed_files,
                "last_registered_at": state.last_registered_at,
            }
        )
    return result


@dataclass(frozen=True)
class RunRequest:
    """A DAG run to trigger: the file type's DAG with ``conf = {"file_id": ..., "force": ...}``."""

    dag_id: str
    file_id: str
    force: bool
    s3_key: str

    @property
    def conf(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "force": self.force}


def replay_request(
    conn, settings: Settings, file_types: Iterable[FileType], file_id: str, *, force: bool
) -> RunRequest:
    """Check one file can be replayed (``force=False``: FAILED) or force-reloaded (``force=True``:
    DONE / DONE_WITH_REJECTS), and name the run that does it.

    :raises ActionRefused: unknown file, no configured file type, or a state the action does not take
        (the message says the state and what to do).
    """
    row = register.get_file(conn, settings, file_id)
    conn.rollback()
    if row is None:
        raise ActionRefused(f"file_id {file_id} is not in the register")
    by_name = {ft.name: ft for ft in file_types}
    file_type = by_name.get(row["file_type"] or "")
    if file_type is None:
        raise ActionRefused(f"{row['s3_key']} has no configured file type ({row['file_type'] or 'UNMATCHED'})")
    if force and row["status"] not in RELOADABLE:
        raise ActionRefused(f"{row['s3_key']} is {row['status']}: only DONE files are force-reloaded")
    if not force and row["status"] != register.FAILED:
        hint = " (use force reload)" if row["status"] in RELOADABLE else ""
        raise ActionRefused(f"{row['s3_key']} is {row['status']}: only FAILED files are replayed{hint}")
    return RunRequest(dag_id=file_type.dag_id, file_id=file_id, force=force, s3_key=row["s3_key"])


def bulk_replay_selection(
    conn, settings: Settings, file_types: Iterable[FileType], file_type: str, since: datetime, until: datetime
) -> list[RunRequest]:
    """The FAILED files of ``file_type`` registered in ``[since, until)``, oldest first, as run requests.

    :raises ActionRefused: unknown file type, empty or reversed range, more than ``MAX_BULK`` files.
    """
    by_name = {ft.name: ft for ft in file_types}
    if file_type not in by_name:
        raise ActionRefused(f"unknown file type {file_type!r}")
    if since >= until:
        raise ActionRefused("'since' must be before 'until'")
    with conn.cursor() as cur:
        cur.execute(
            render_register("select_failed_in_range.sql", settings),
            {"file_type": file_type, "since": since, "until": until, "limit": MAX_BULK + 1},
        )
        rows = _rows(cur)
    conn.rollback()
    if len(rows) > MAX_BULK:
        raise ActionRefused(f"more than {MAX_BULK} FAILED {file_type} files in that range: narrow it")
    dag_id = by_name[file_type].dag_id
    return [RunRequest(dag_id=dag_id, file_id=r["file_id"], force=False, s3_key=r["s3_key"]) for r in rows]
