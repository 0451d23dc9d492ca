"""The target table of a file type as an Airflow 3 ``Asset``: the outlet of its ingest DAG.

Kept apart from :mod:`redshift_ingest.lineage` (OpenLineage) so that parsing the DAGs imports only
Airflow's ``Asset``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redshift_ingest.config import FileType, Settings

if TYPE_CHECKING:
    from airflow.sdk import Asset

ASSET_SCHEME = "x-redshift-ingest"  # Airflow leaves "x-" schemes as they are (no URI normaliser)


def asset_for(file_type: FileType, settings: Settings) -> Asset:
    """The Asset of a file type's target table: the outlet of its ingest DAG.

    ``name`` is the table (``schema.table``), ``uri`` ``x-redshift-ingest://<warehouse_conn_id>/<schema>/<table>``
    (known at parse time without reading the connection; ``x-`` schemes are left as they are by
    Airflow's URI normaliser). File types sharing a table share the asset. Downstream DAGs:
    ``schedule=[Asset.ref(name="analytics.penguins")]`` or ``schedule=[asset_for(file_type, settings)]``.
    """
    from airflow.sdk import Asset

    table = file_type.target.table
    return Asset(
        name=f"{table.schema_name}.{table.table}",
        uri=f"{ASSET_SCHEME}://{settings.warehouse_conn_id}/{table.schema_name}/{table.table}",
        group="redshift_table",
    )
