"""The DAG run's note: what the run loaded, so the Airflow grid reads as a load history.

At the end of every ingest run (the archive step of ``load_files``, or the failure handler) the run's note is set to
its outcome counts and its files (key, size, file_id, rows loaded and rejected). Airflow's task
runtime cannot change a run's note, so the note goes through Airflow's public REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`` with ``update_mask=note``; the note holds at
most 1,000 characters: ``DAGRunPatchBody`` in Airflow 3.3):

- on MWAA, through ``MwaaHook.invoke_rest_api`` (the provider's wrapper of the MWAA
  ``InvokeRestApi`` call; the execution role needs ``airflow:InvokeRestApi``): an Airflow
  connection ``airflow_api`` of type ``aws`` whose extra names the environment,
  ``{"mwaa_environment": "<name>"}``;
- elsewhere (the local stack, docker-compose), an ``http`` connection ``airflow_api``: the
  api-server's URL as host, a user allowed to edit DAG runs as login/password (a JWT is asked for
  at ``/auth/token``).

Without that connection there is no note (logged once per run at INFO). A note that cannot be set
never fails the run: the register, not the note, is the record.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import requests

log = logging.getLogger(__name__)

NOTE_CONN_ID = "airflow_api"
MAX_NOTE_CHARS = 1000  # DAGRunPatchBody.note max_length (Airflow 3.3 REST API)
_TIMEOUT_S = 10


def run_note(rows: list[dict[str, Any]], *, most: int = 5) -> str:
    """The note of a run over the register rows of its files.

    :param rows: register rows (``file_id``, ``s3_key``, ``status``, ``size_bytes``, ``rows_loaded``,
        ``rows_rejected``, ``error_message``), one per claimed file.
    :param most: files listed one by one; the others are counted.
    :returns: e.g. ``3 files, 1.2 MB: 2 DONE, 1 FAILED`` then one line per file
        (``DONE landing/a.csv 10.0 kB 1f2e… 120 rows, 0 rejected``); at most 1,000 characters.
    """
    if not rows:
        return "no file to load"
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    size = sum(r.get("size_bytes") or 0 for r in rows)
    loaded = sum(r.get("rows_loaded") or 0 for r in rows)
    rejected = sum(r.get("rows_rejected") or 0 for r in rows)
    head = (
        f"{len(rows)} file{'s' if len(rows) != 1 else ''}, {_size(size)}, {loaded} rows loaded, {rejected} rejected: "
        + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    )
    lines = [head]
    for r in rows[:most]:
        line = (
            f"{r['status']} {_printable(r['s3_key'])} {_size(r.get('size_bytes') or 0)} {r['file_id'][:12]} "
            f"{r.get('rows_loaded') or 0} rows, {r.get('rows_rejected') or 0} rejected"
        )
        if r["status"] not in ("DONE", "DONE_WITH_REJECTS") and r.get("error_message"):
            line += f" | {_printable(r['error_message'])[:160]}"
        lines.append(line)
    if len(rows) > most:
        lines.append(f"and {len(rows) - most} more")
    note = "\n".join(lines)
    return note if len(note) <= MAX_NOTE_CHARS else note[: MAX_NOTE_CHARS - 1] + "…"


def set_run_note(dag_id: str, run_id: str, note: str, conn_id: str = NOTE_CONN_ID) -> bool:
    """Set the note of DAG run ``run_id`` of ``dag_id`` (best effort).

    :returns: True when the API accepted it; False when no ``conn_id`` connection exists or the call
        failed (logged with the reason; never raised).
    """
    from airflow.sdk import BaseHook  # at run time only: not on the DAG-parse path

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:
        log.info("No %r connection: the run's note is not set (see docs/operations.md, Run notes)", conn_id)
        return False
    path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
    body = {"note": note[:MAX_NOTE_CHARS]}
    try:
        if conn.conn_type == "aws":
            _via_mwaa(conn, path, body)
        else:
            _via_http(conn, path, body)
    except Exception as err:
        log.warning("Could not set the note of run %s of %s: %s", run_id, dag_id, err)
        return False
    return True


def _via_mwaa(conn, path: str, body: dict[str, Any]) -> None:
    from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook

    environment = (conn.extra_dejson or {}).get("mwaa_environment")
    if not environment:
        raise ValueError(f"connection {conn.conn_id!r} has no extra 'mwaa_environment'")
    MwaaHook(aws_conn_id=conn.conn_id).invoke_rest_api(
        env_name=environment, path=path, method="PATCH", body=body, query_params={"update_mask": "note"}
    )


def _via_http(conn, path: str, body: dict[str, Any]) -> None:
    base = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}"
    if conn.port:
        base = f"{base.rstrip('/')}:{conn.port}"
    base = base.rstrip("/")
    token = requests.post(
        f"{base}/auth/token", json={"username": conn.login, "password": conn.password}, timeout=_TIMEOUT_S
    )
    token.raise_for_status()
    response = requests.patch(
        f"{base}/api/v2{path}",
        params={"update_mask": "note"},
        json=body,
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=_TIMEOUT_S,
    )
    response.raise_for_status()


def _size(n: int) -> str:
    """Bytes in decimal units: ``512 B``, ``1.5 kB``, ``12.3 MB``."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _printable(text: str) -> str:
    """Keys are user input: control characters (a line feed in a key) never split the note's lines."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
