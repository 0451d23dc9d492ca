"""Health of each file type from the register: backlog, last arrival, and the alert incidents.

- :func:`file_type_health`: per configured file type, NEW files, the oldest NEW registration,
  files in progress and FAILED, the last registration (any status).
- :func:`current_incidents`: what is wrong now: ``BACKLOG`` when the oldest NEW file waited longer
  than ``alerts.backlog_minutes``, ``SILENT`` when nothing arrived for ``alerts.expect_every``
  (a file type that never received a file counts as silent).
- :func:`track_incidents`: compares with the open incidents of the alert-state table
  (``<register>_alerts``) and returns what opened (alert once) and what closed (one resolution
  message), in one transaction under ``LOCK``, so two runs cannot both alert.

Times are naive UTC like the register's (``registered_at``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redshift_ingest.config import FileType, Settings, TableName
from redshift_ingest.sql import render, render_register

BACKLOG = "BACKLOG"
SILENT = "SILENT"


@dataclass(frozen=True)
class FileTypeHealth:
    """One file type's counts (files) and times (naive UTC)."""

    file_type: str
    new_files: int = 0
    oldest_new_at: datetime | None = None
    in_progress: int = 0
    failed_files: int = 0
    last_registered_at: datetime | None = None

    def oldest_new_age(self, now: datetime) -> timedelta | None:
        """How long the oldest NEW file has waited, or None when nothing waits."""
        return None if self.oldest_new_at is None else max(now - self.oldest_new_at, timedelta(0))

    def silence(self, now: datetime) -> timedelta | None:
        """Time since the last arrival, or None when no file ever arrived."""
        return None if self.last_registered_at is None else max(now - self.last_registered_at, timedelta(0))


@dataclass(frozen=True)
class Incident:
    """Something wrong with one file type now; ``bucket``/``key`` name what the alert points at."""

    file_type: str
    kind: str
    detail: str
    bucket: str
    key: str


def alert_state_table(settings: Settings) -> TableName:
    """``<register schema>.<register table>_alerts``.

    :raises ValueError: the name would be longer than Redshift's 127-byte identifiers.
    """
    name = f"{settings.register_table.table}_alerts"
    if len(name.encode()) > 127:
        raise ValueError(f"alert-state table name {name!r} is longer than 127 bytes: shorten the register's name")
    return TableName(schema_name=settings.register_table.schema_name, table=name)


def _alerts_sql(template: str, settings: Settings) -> str:
    return render(f"alerts/{template}", alerts=alert_state_table(settings).quoted)


def file_type_health(conn, settings: Settings, file_types: Iterable[FileType]) -> list[FileTypeHealth]:
    """One :class:`FileTypeHealth` per file type (zeros when the register has none of it), in order.

    Reads only; leaves no transaction open.
    """
    with conn.cursor() as cur:
        cur.execute(render_register("select_file_type_health.sql", settings))
        columns = [d[0] for d in cur.description]
        found = {row[0]: dict(zip(columns, row, strict=True)) for row in cur.fetchall()}
    conn.rollback()
    result = []
    for file_type in file_types:
        row = found.get(file_type.name)
        if row is None:
            result.append(FileTypeHealth(file_type.name))
            continue
        result.append(
            FileTypeHealth(
                file_type=file_type.name,
                new_files=int(row["new_files"] or 0),
                oldest_new_at=row["oldest_new_at"],
                in_progress=int(row["in_progress"] or 0),
                failed_files=int(row["failed_files"] or 0),
                last_registered_at=row["last_registered_at"],
            )
        )
    return result


def oldest_new_file(conn, settings: Settings, file_type: str) -> dict[str, Any] | None:
    """The oldest NEW file of ``file_type`` (file_id, bucket, s3_key, size_bytes, registered_at)."""
    with conn.cursor() as cur:
        cur.execute(render_register("select_oldest_new_file.sql", settings), {"file_type": file_type})
        row = cur.fetchone()
        result = None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))
    conn.rollback()
    return result


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def current_incidents(
    conn, settings: Settings, file_types: Iterable[FileType], health: Iterable[FileTypeHealth], now: datetime
) -> dict[tuple[str, str], Incident]:
    """The incidents that hold at ``now``, keyed by (file type, kind). File types without
    ``alerts.backlog_minutes`` / ``alerts.expect_every`` have none of that kind."""
    by_name = {h.file_type: h for h in health}
    found: dict[tuple[str, str], Incident] = {}
    for file_type in file_types:
        state = by_name.get(file_type.name, FileTypeHealth(file_type.name))
        limit = file_type.alerts.backlog_minutes
        age = state.oldest_new_age(now)
        if limit is not None and age is not None and age > timedelta(minutes=limit):
            oldest = oldest_new_file(conn, settings, file_type.name) or {}
            found[(file_type.name, BACKLOG)] = Incident(
                file_type=file_type.name,
                kind=BACKLOG,
                detail=f"{state.new_files} NEW file(s) waiting; the oldest for {_minutes(age)} "
                f"(alerts.backlog_minutes: {limit})",
                bucket=oldest.get("bucket", settings.landing_bucket),
                key=oldest.get("s3_key", file_type.source.prefix),
            )
        expected = file_type.alerts.expect_every
        silence = state.silence(now)
        if expected is not None and (silence is None or silence > expected):
            since = "no file has ever arrived" if silence is None else f"no file arrived for {_minutes(silence)}"
            found[(file_type.name, SILENT)] = Incident(
                file_type=file_type.name,
                kind=SILENT,
                detail=f"{since} (alerts.expect_every: {_minutes(expected)}); "
                f"expected under s3://{settings.landing_bucket}/{file_type.source.prefix}{file_type.source.pattern}",
                bucket=settings.landing_bucket,
                key=file_type.source.prefix,
            )
    return found


def ensure_alert_state(conn, settings: Settings) -> None:
    """Create the alert-state table when missing, and commit."""
    with conn.cursor() as cur:
        cur.execute(_alerts_sql("create_alert_state.sql", settings))
    conn.commit()


def track_incidents(
    conn, settings: Settings, current: dict[tuple[str, str], Incident], now: datetime
) -> tuple[list[Incident], list[dict[str, Any]]]:
    """Open the incidents that are new, close the open ones that no longer hold; commit.

    :returns: (opened incidents: send an alert each; closed incidents as rows ``{file_type, kind,
        opened_at, detail}``: send a resolution each). An incident already open is neither.
    """
    opened: list[Incident] = []
    closed: list[dict[str, Any]] = []
    try:
        with conn.cursor() as cur:
            cur.execute(_alerts_sql("lock_alert_state.sql", settings))
            cur.execute(_alerts_sql("select_open_alerts.sql", settings))
            columns = [d[0] for d in cur.description]
            open_now = {(r[0], r[1]): dict(zip(columns, r, strict=True)) for r in cur.fetchall()}
            for key, incident in current.items():
                if key in open_now:
                    continue
                params = {"file_type": incident.file_type, "kind": incident.kind, "now": now, "detail": incident.detail}
                cur.execute(_alerts_sql("open_alert.sql", settings), params)
                if cur.rowcount == 1:
                    opened.append(incident)
            for key, row in open_now.items():
                if key in current:
                    continue
                cur.execute(
                    _alerts_sql("resolve_alert.sql", settings), {"file_type": key[0], "kind": key[1], "now": now}
                )
                if cur.rowcount == 1:
                    closed.append(row)
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return opened, closed
