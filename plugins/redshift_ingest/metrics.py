"""Metrics of the loads through Airflow's ``Stats`` (StatsD or OpenTelemetry, as configured in
``[metrics]``; MWAA forwards them to CloudWatch).

Every name starts with ``redshift_ingest.`` and ends with the file type (``<file_type>`` is the
file type's name, ``[a-z0-9_]``), the way Airflow's own per-DAG metrics put the DAG id in the name
(plain StatsD has no tags); the file type is also passed as the ``file_type`` tag for backends with
tags (OpenTelemetry, Datadog, InfluxDB-style StatsD). ``[metrics] statsd_prefix`` (default
``airflow``) is prepended by Airflow.

=================================================  =======  ===========================================
name                                               kind     value
=================================================  =======  ===========================================
``redshift_ingest.files_loaded.<file_type>``       counter  +1 per file DONE / DONE_WITH_REJECTS
``redshift_ingest.files_failed.<file_type>``       counter  +1 per file marked FAILED
``redshift_ingest.rows_loaded.<file_type>``        counter  rows loaded by the COPY
``redshift_ingest.rows_rejected.<file_type>``      counter  rows rejected by the COPY (MAXERROR)
``redshift_ingest.bytes_loaded.<file_type>``       counter  bytes of the landed object
``redshift_ingest.load_duration.<file_type>``      timer    claim -> loaded, milliseconds
``redshift_ingest.backlog_files.<file_type>``      gauge    NEW files waiting
``redshift_ingest.backlog_age_seconds.<file_type>`` gauge   age of the oldest NEW file, seconds (0: none)
=================================================  =======  ===========================================
"""

from __future__ import annotations

from datetime import timedelta

PREFIX = "redshift_ingest"
FILES_LOADED = "files_loaded"
FILES_FAILED = "files_failed"
ROWS_LOADED = "rows_loaded"
ROWS_REJECTED = "rows_rejected"
BYTES_LOADED = "bytes_loaded"
LOAD_DURATION = "load_duration"
BACKLOG_FILES = "backlog_files"
BACKLOG_AGE_SECONDS = "backlog_age_seconds"
METRICS = (
    FILES_LOADED,
    FILES_FAILED,
    ROWS_LOADED,
    ROWS_REJECTED,
    BYTES_LOADED,
    LOAD_DURATION,
    BACKLOG_FILES,
    BACKLOG_AGE_SECONDS,
)


def metric_name(metric: str, file_type: str) -> str:
    """``redshift_ingest.<metric>.<file_type>``.

    :raises ValueError: an unknown metric.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {METRICS}")
    return f"{PREFIX}.{metric}.{file_type}"


def _stats():
    from airflow.sdk.observability.stats import Stats

    return Stats


def file_loaded(
    file_type: str,
    *,
    rows_loaded: int | None,
    rows_rejected: int | None,
    size_bytes: int | None,
    load_duration: timedelta | None,
) -> None:
    """A file reached DONE / DONE_WITH_REJECTS: files, rows, rejects, bytes and its load time.

    Call once per file when ``mark_done`` changed its state (not again for a cleared task that
    finds it done). ``load_duration`` is claim to loaded (``loaded_at - claimed_at``).
    """
    stats, tags = _stats(), {"file_type": file_type}
    stats.incr(metric_name(FILES_LOADED, file_type), tags=tags)
    stats.incr(metric_name(ROWS_LOADED, file_type), count=int(rows_loaded or 0), tags=tags)
    stats.incr(metric_name(ROWS_REJECTED, file_type), count=int(rows_rejected or 0), tags=tags)
    stats.incr(metric_name(BYTES_LOADED, file_type), count=int(size_bytes or 0), tags=tags)
    if load_duration is not None:
        stats.timing(metric_name(LOAD_DURATION, file_type), load_duration, tags=tags)


def file_failed(file_type: str, rows_rejected: int | None = None) -> None:
    """A file was marked FAILED (call when the failure handler changed its state)."""
    stats, tags = _stats(), {"file_type": file_type}
    stats.incr(metric_name(FILES_FAILED, file_type), tags=tags)
    if rows_rejected:
        stats.incr(metric_name(ROWS_REJECTED, file_type), count=int(rows_rejected), tags=tags)


def backlog(file_type: str, new_files: int, oldest_age: timedelta | None) -> None:
    """The backlog of one file type: NEW files and the age of the oldest (0 when there is none)."""
    stats, tags = _stats(), {"file_type": file_type}
    stats.gauge(metric_name(BACKLOG_FILES, file_type), new_files, tags=tags)
    age = oldest_age.total_seconds() if oldest_age is not None else 0
    stats.gauge(metric_name(BACKLOG_AGE_SECONDS, file_type), round(age), tags=tags)


def names(file_types: list[str]) -> list[str]:
    """Every metric name for these file types (the README's and ``make demo``'s list)."""
    return [metric_name(metric, name) for name in file_types for metric in METRICS]
