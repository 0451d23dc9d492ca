"""A StatsD sink for the demo: a UDP socket that keeps every metric Airflow's ``Stats`` sends to it.

``with StatsdSink() as sink:`` exports ``AIRFLOW__METRICS__STATSD_*`` (Airflow reads them when
``Stats`` is initialised) and initialises ``Stats`` the way Airflow's task runner does, so tasks run
in this process (``dag.test()``) emit to it; ``sink.names(prefix)`` are the names received.
"""

from __future__ import annotations

import os
import socket
import threading


class StatsdSink:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)

    def env(self) -> dict[str, str]:
        return {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.sock.getsockname()[1]),
        }

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines.extend(self.sock.recv(65535).decode(errors="replace").splitlines())
            except TimeoutError:
                continue

    def names(self, contains: str = "") -> list[str]:
        """Distinct metric names received (``airflow.redshift_ingest.rows_loaded.penguins``), sorted."""
        return sorted({line.split(":", 1)[0] for line in self.lines if contains in line})

    def __enter__(self) -> StatsdSink:
        os.environ.update(self.env())
        from airflow.sdk.observability.metrics.stats_utils import get_stats_factory
        from airflow.sdk.observability.stats import Stats

        Stats.initialize(factory=get_stats_factory(), export_legacy_names=False)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
