"""RegisterSensor: wait for a NEW file of one file type in the register, deferred to the triggerer."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.sensors.sql import SqlSensor
from airflow.sdk.exceptions import AirflowSensorTimeout

from redshift_ingest.config import FileType, Settings
from redshift_ingest.sql import render_register

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

UNDEFINED_TABLE = "42P01"  # SQLSTATE undefined_table (PostgreSQL and Redshift)
SUCCESS = "success"  # the payload of the TaskSuccessEvent that ends the wait from the triggerer


class RegisterUnavailable(RuntimeError):
    """The register could not be read while waiting. Not an ``AirflowException``: the task is
    retried (its ``retries``), never skipped by ``soft_fail``, which is for "no file came"."""


class RegisterSensor(SqlSensor):
    """The provider's ``SqlSensor`` on the register, through :class:`WarehouseHook` (psycopg2), able to defer.

    ``SqlSensor`` picks its hook from the connection type, and for ``postgres`` the provider's hook
    uses psycopg 3 when installed, which Redshift does not support; ``sql``, ``parameters``,
    ``mode="reschedule"`` and ``soft_fail`` are ``SqlSensor``'s.

    With ``deferrable=True`` the task checks once (a file already there, or a ``file_id`` run, goes
    straight on) and otherwise defers to :class:`~redshift_ingest.triggers.register_trigger.NewFileTrigger`
    until a NEW file of ``file_type`` is registered: no worker slot is held while waiting, and the
    trigger ends the task successfully itself (no worker resumes it just to finish). ``timeout``
    bounds the wait in both modes; with ``soft_fail`` the run then ends skipped.

    On a fresh warehouse the register does not exist until the first file is registered: the first
    check creates it (``ensure_register``) and counts as "no file yet".

    :param file_type: the file type waited for.
    :param settings: shared settings (register table, connection id).
    :param deferrable: wait in the triggerer (True) or by ``mode`` pokes from a worker (False).
    :param poll_interval: seconds between the trigger's register checks.
    :raises RegisterUnavailable: (on resume) the trigger could not read the register.
    """

    def __init__(
        self,
        *,
        file_type: FileType,
        settings: Settings,
        deferrable: bool = True,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=settings.warehouse_conn_id, **kwargs)
        self.file_type = file_type
        self.settings = settings
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def _get_hook(self) -> DbApiHook:
        from redshift_ingest.hooks.warehouse import WarehouseHook  # psycopg2: when the task runs

        return WarehouseHook(warehouse_conn_id=self.conn_id)

    def poke(self, context: Any) -> bool:
        try:
            return super().poke(context)
        except Exception as err:
            if getattr(err, "pgcode", None) != UNDEFINED_TABLE:
                raise
        from redshift_ingest.register import ensure_register

        self.log.info("No register table %s yet (fresh warehouse): creating it", self.settings.register_table)
        conn = self._get_hook().get_conn()
        try:
            ensure_register(conn, self.settings)
        finally:
            conn.close()
        return False

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            self.log.info("A file is there: no wait")
            return None
        from redshift_ingest.triggers.register_trigger import NewFileTrigger

        self.defer(
            trigger=NewFileTrigger(
                conn_id=self.conn_id,
                register_table=str(self.settings.register_table),
                file_type=self.file_type.name,
                poll_interval=self.poll_interval,
                deadline=time.time() + self.timeout,
                end_from_trigger=True,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | str | None = None) -> None:
        """Resume after the trigger fired.

        :raises AirflowSensorTimeout: no file before the timeout (skipped by ``soft_fail``).
        :raises RegisterUnavailable: the trigger reported an error (retried).
        """
        from redshift_ingest.triggers.register_trigger import ERROR, FOUND, TIMEOUT

        if isinstance(event, str):  # dag.test() resumes a task its trigger ended: the payload is the state
            if event == SUCCESS:
                self.log.info("NEW file(s) of %s in the register", self.file_type.name)
                return
            event = {"status": ERROR, "message": f"the trigger ended the task as {event}"}
        if event and event.get("status") == FOUND:
            self.log.info("%s NEW file(s) of %s in the register", event.get("new_files"), self.file_type.name)
            return
        if event and event.get("status") == TIMEOUT:
            raise AirflowSensorTimeout(f"no {self.file_type.name} file in {self.timeout:.0f}s")
        raise RegisterUnavailable(f"waiting for a {self.file_type.name} file: {(event or {}).get('message', event)}")


@cache
def _count_new_files_sql(settings: Settings) -> str:
    """The sensor's query for ``settings``' register, rendered once per process (not once per DAG)."""
    return render_register("count_new_files.sql", settings)


def build_wait_sensor(file_type: FileType, settings: Settings, **task_args: Any) -> RegisterSensor:
    """The ``wait_for_new_file`` task of a file type's ingest DAG (call inside the ``with DAG`` block).

    Deferrable by default (``sensor.mode``); a run whose conf names a ``file_id`` does not wait; the wait ends
    skipped after ``sensor.timeout_seconds``. ``task_args`` go to the operator as they are: the ingest
    DAG passes the file type's ``retries`` and backoff (errors other than "no file yet" are retried),
    its owner and ``on_failure_callback``.
    """
    deferrable = file_type.sensor.mode == "deferrable"
    return RegisterSensor(
        task_id="wait_for_new_file",
        file_type=file_type,
        settings=settings,
        sql=_count_new_files_sql(settings),
        parameters={"file_type": file_type.name, "file_id": "{{ params.get('file_id') or '' }}"},
        deferrable=deferrable,
        poll_interval=file_type.sensor.interval_seconds,
        mode="poke" if deferrable else "reschedule",
        poke_interval=file_type.sensor.interval_seconds,
        timeout=file_type.sensor.timeout_seconds,
        soft_fail=True,
        **task_args,
    )
