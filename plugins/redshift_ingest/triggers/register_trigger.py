"""NewFileTrigger: wait in the triggerer until the register holds a NEW file of one file type.

Every trigger of a triggerer process that watches the same register (same connection and table)
shares one poller: one ``SELECT file_type, count(*) ... WHERE status = 'NEW' GROUP BY file_type``
per poll interval, whatever the number of waiting file types, on one open connection. So 200 idle
file types cost one small query every few seconds and one warehouse session per triggerer, and no
worker slot at all.

Driver: psycopg2 (the driver :class:`~redshift_ingest.hooks.warehouse.WarehouseHook` pins) in a
worker thread (``asyncio.to_thread``), not an async driver. The stack ships asyncpg and psycopg 3,
but neither supports Amazon Redshift: asyncpg relies on PostgreSQL features Redshift lacks, and
psycopg 3 fails on Redshift's ``UNICODE`` client encoding (psycopg/psycopg#122, open). With one
query per poll interval per triggerer, a thread costs nothing measurable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

log = logging.getLogger(__name__)

FOUND = "found"
ERROR = "error"
TIMEOUT = "timeout"


class RegisterPoller:
    """One polling loop per event loop, connection and register table, shared by its subscribers.

    Each poll stores ``counts`` (file type -> NEW files) or ``error`` and wakes every subscriber. The
    loop runs while someone subscribes, at the shortest interval any subscriber asked for, and closes
    its connection when the last one leaves.

    :param conn_id: the warehouse connection (conn type postgres).
    :param register_table: ``schema.table`` of the register.
    """

    _pollers: dict[tuple[int, str, str], RegisterPoller] = {}

    def __init__(self, conn_id: str, register_table: str) -> None:
        self.conn_id = conn_id
        self.register_table = register_table
        self.counts: dict[str, int] = {}
        self.error: BaseException | None = None
        self.polls = 0
        self._intervals: list[float] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._conn: Any = None  # a psycopg2 connection once polling

    @classmethod
    def shared(cls, conn_id: str, register_table: str) -> RegisterPoller:
        """The poller of the running event loop for this connection and table (created on first use)."""
        key = (id(asyncio.get_running_loop()), conn_id, register_table)
        poller = cls._pollers.get(key)
        if poller is None:
            poller = cls._pollers[key] = cls(conn_id, register_table)
        return poller

    @contextlib.asynccontextmanager
    async def subscribe(self, interval: float) -> AsyncIterator[RegisterPoller]:
        """Take part in the polling (at most ``interval`` seconds apart) for the ``async with`` block."""
        self._intervals.append(interval)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"register-poller-{self.register_table}")
        try:
            yield self
        finally:
            self._intervals.remove(interval)
            if not self._intervals:
                self._pollers.pop((id(asyncio.get_running_loop()), self.conn_id, self.register_table), None)

    async def next_poll(self, after: int) -> int:
        """Wait until a poll newer than number ``after`` has finished; returns its number."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.polls > after)
            return self.polls

    async def _loop(self) -> None:
        try:
            while self._intervals:
                started = time.monotonic()
                try:
                    counts, error = await asyncio.to_thread(self._query), None
                except Exception as err:  # any failure is reported to the subscribers, who decide
                    counts, error = {}, err
                    await asyncio.to_thread(self._close)
                async with self._changed:
                    self.counts, self.error = counts, error
                    self.polls += 1
                    self._changed.notify_all()
                if self._intervals:
                    await asyncio.sleep(max(0.0, min(self._intervals) - (time.monotonic() - started)))
        finally:
            await asyncio.shield(asyncio.to_thread(self._close))

    def _query(self) -> dict[str, int]:
        """One poll (blocking; runs in a worker thread): NEW files per file type."""
        from redshift_ingest.config import TableName
        from redshift_ingest.hooks.warehouse import WarehouseHook
        from redshift_ingest.sql import render

        if self._conn is None or self._conn.closed:
            self._conn = WarehouseHook(warehouse_conn_id=self.conn_id).get_conn()
            # Autocommit: each poll sees the latest commits and no transaction stays open between polls.
            self._conn.autocommit = True
        sql = render("register/count_new_by_type.sql", register=TableName.parse(self.register_table).quoted)
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return {file_type: int(count) for file_type, count in cur.fetchall()}

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                conn.close()


class NewFileTrigger(BaseTrigger):
    """Fire once the register holds a NEW file of ``file_type``.

    Events (``TriggerEvent.payload``): ``{"status": "found", "file_type": ..., "new_files": n}``;
    ``{"status": "error", "file_type": ..., "message": ...}`` when the register could not be read
    for ``error_tolerance_seconds`` in a row (shorter outages are logged and waited out, so that one
    broken connection does not send every waiting file type back to a worker at once); or
    ``{"status": "timeout", ...}`` at ``deadline``. The deadline is the trigger's own (an absolute
    time, so a triggerer restart keeps it) besides the scheduler's deferral timeout, so that runs
    without a scheduler (``dag.test()``) end too.

    :param conn_id: warehouse connection id.
    :param register_table: ``schema.table`` of the register (validated by :class:`~redshift_ingest.config.TableName`).
    :param file_type: the file type's name.
    :param poll_interval: seconds between register checks.
    :param error_tolerance_seconds: seconds of failing checks before the error event.
    :param deadline: UNIX time (seconds) after which the wait ends with the timeout event; None: never.
    :param end_from_trigger: when a file is there, end the deferred task successfully from the triggerer
        (``TaskSuccessEvent``: Airflow's "Exiting deferred task from Triggers") instead of the found event,
        so no worker slot is taken to resume it and the next task is scheduled at once. Errors and the
        timeout still resume the task on a worker, which raises them.
    """

    def __init__(
        self,
        conn_id: str,
        register_table: str,
        file_type: str,
        poll_interval: float = 2.0,
        error_tolerance_seconds: float = 120.0,
        deadline: float | None = None,
        end_from_trigger: bool = False,
    ) -> None:
        super().__init__()
        self.end_from_trigger = end_from_trigger
        self.conn_id = conn_id
        self.register_table = register_table
        self.file_type = file_type
        self.poll_interval = float(poll_interval)
        self.error_tolerance_seconds = float(error_tolerance_seconds)
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "register_table": self.register_table,
                "file_type": self.file_type,
                "poll_interval": self.poll_interval,
                "error_tolerance_seconds": self.error_tolerance_seconds,
                "deadline": self.deadline,
                "end_from_trigger": self.end_from_trigger,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = RegisterPoller.shared(self.conn_id, self.register_table)
        failing_since: float | None = None
        seen = 0
        async with poller.subscribe(self.poll_interval):
            while True:
                remaining = None if self.deadline is None else self.deadline - time.time()
                try:
                    seen = await asyncio.wait_for(poller.next_poll(seen), timeout=remaining)
                except TimeoutError:
                    yield TriggerEvent({"status": TIMEOUT, "file_type": self.file_type})
                    return
                if poller.error is None:
                    failing_since = None
                    if new_files := poller.counts.get(self.file_type, 0):
                        if self.end_from_trigger:  # the sensor succeeds here: no worker resumes it
                            self.log.info("%d NEW file(s) of %s: the wait ends", new_files, self.file_type)
                            yield TaskSuccessEvent()
                        else:
                            yield TriggerEvent({"status": FOUND, "file_type": self.file_type, "new_files": new_files})
                        return
                    continue
                now = time.monotonic()
                failing_since = failing_since or now
                message = f"{type(poller.error).__name__}: {poller.error}".strip()
                if now - failing_since >= self.error_tolerance_seconds:
                    yield TriggerEvent({"status": ERROR, "file_type": self.file_type, "message": message})
                    return
                self.log.warning("Register check failed (tolerated %.0fs): %s", self.error_tolerance_seconds, message)
