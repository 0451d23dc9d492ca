"""The metrics reach a real StatsD socket through Airflow's ``Stats`` (its StatsD backend, as MWAA
configures it): names, kinds and values as documented in :mod:`redshift_ingest.metrics`."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest

from redshift_ingest import metrics


@pytest.fixture
def statsd():
    """A UDP socket standing in for the StatsD daemon; Airflow's Stats sends to it (prefix ``airflow``)."""
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability.metrics.statsd_logger import get_statsd_logger
    from airflow.sdk.observability.stats import Stats

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    env = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(sock.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    Stats.initialize(factory=get_statsd_logger, export_legacy_names=False)

    def received(count: int) -> list[str]:
        return [sock.recv(4096).decode() for _ in range(count)]

    yield received
    Stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
    sock.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_a_loaded_file_counts_files_rows_rejects_bytes_and_load_time(statsd):
    metrics.file_loaded(
        "penguins", rows_loaded=344, rows_rejected=2, size_bytes=53_000, load_duration=timedelta(seconds=1.5)
    )
    assert statsd(5) == [
        "airflow.redshift_ingest.files_loaded.penguins:1|c",
        "airflow.redshift_ingest.rows_loaded.penguins:344|c",
        "airflow.redshift_ingest.rows_rejected.penguins:2|c",
        "airflow.redshift_ingest.bytes_loaded.penguins:53000|c",
        "airflow.redshift_ingest.load_duration.penguins:1500.000000|ms",
    ]


def test_failed_files_and_backlog_gauges(statsd):
    metrics.file_failed("tweets", rows_rejected=26)
    metrics.backlog("tweets", 3, timedelta(minutes=90))
    metrics.backlog("penguins", 0, None)
    assert statsd(6) == [
        "airflow.redshift_ingest.files_failed.tweets:1|c",
        "airflow.redshift_ingest.rows_rejected.tweets:26|c",
        "airflow.redshift_ingest.backlog_files.tweets:3|g",
        "airflow.redshift_ingest.backlog_age_seconds.tweets:5400|g",
        "airflow.redshift_ingest.backlog_files.penguins:0|g",
        "airflow.redshift_ingest.backlog_age_seconds.penguins:0|g",
    ]


def test_names():
    assert metrics.names(["penguins"])[:2] == [
        "redshift_ingest.files_loaded.penguins",
        "redshift_ingest.files_failed.penguins",
    ]
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.metric_name("files_lost", "penguins")
