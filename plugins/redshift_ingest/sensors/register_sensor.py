"""RegisterSensor: wait for a NEW file of one file type in the register."""

from __future__ import annotations

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.sensors.sql import SqlSensor

from redshift_ingest.hooks.warehouse import WarehouseHook


class RegisterSensor(SqlSensor):
    """The provider's ``SqlSensor``, talking to the warehouse through :class:`WarehouseHook` (psycopg2).

    ``SqlSensor`` picks its hook from the connection type, and for ``postgres`` the provider's hook
    uses psycopg 3 when installed, which Redshift does not support; everything else (``sql``,
    ``parameters``, ``mode="reschedule"``, ``soft_fail``) is ``SqlSensor``'s.
    """

    def _get_hook(self) -> DbApiHook:
        return WarehouseHook(warehouse_conn_id=self.conn_id)
