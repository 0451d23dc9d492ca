"""Lineage of a load: OpenLineage facets of one COPY, and the target table as an Airflow Asset.

- :func:`copy_facets` builds what ``CopyIntoTargetOperator.get_openlineage_facets_on_complete``
  returns, shaped like the Amazon provider's ``S3ToRedshiftOperator`` (input dataset
  ``s3://<bucket>`` / ``<key>``, output dataset ``redshift://<cluster>.<region>:<port>`` /
  ``<database>.<schema>.<table>`` with its schema facet), plus the counts: input statistics (rows
  read, bytes), output statistics (rows loaded) and a ``redshiftIngestLoad`` run facet (rows
  rejected, first error, COPY query id, file_id).
- :func:`asset_for` is the Asset an ingest DAG's last task declares as its outlet, and
  :func:`record_load_event` puts the rows loaded into that task's asset event ``extra``, so a
  downstream DAG scheduled on the asset (dbt, reports) runs when the table was loaded.

Naming follows the OpenLineage naming spec ("Dataset naming": S3 ``s3://{bucket}`` + key; Redshift
``redshift://{cluster_identifier}.{region_name}:{port}`` + ``{database}.{schema}.{table}``), the way
``RedshiftSQLHook.get_openlineage_database_info`` derives the authority from the host name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attr
from openlineage.client.generated.base import RunFacet

from redshift_ingest.assets import ASSET_SCHEME, asset_for  # noqa: F401 - re-exported (the lineage API)
from redshift_ingest.config import FileType, Settings
from redshift_ingest.prepare.staging import MANIFEST_NAME

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Asset

REDSHIFT_PORT = 5439


@attr.define
class RedshiftIngestLoadRunFacet(RunFacet):
    """Per-file accounting of one COPY: rows loaded and rejected (counts of rows), the first
    rejected row's error, the COPY's query id (keys STL_LOAD_ERRORS / SYS_LOAD_ERROR_DETAIL)."""

    fileId: str | None = attr.field(default=None)  # noqa: N815 (OpenLineage facets are camelCase)
    rowsLoaded: int | None = attr.field(default=None)  # noqa: N815
    rowsRejected: int | None = attr.field(default=None)  # noqa: N815
    copyQueryId: int | None = attr.field(default=None)  # noqa: N815
    firstError: str | None = attr.field(default=None)  # noqa: N815
    _additional_skip_redact = ["fileId", "rowsLoaded", "rowsRejected", "copyQueryId"]

    @staticmethod
    def _get_schema() -> str:
        # A custom facet without a published schema of its own: the generic RunFacet schema.
        return "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"


def redshift_authority(host: str | None, port: int | None = None) -> str:
    """``<cluster>.<region>:<port>`` from a Redshift endpoint host name, else ``<host>:<port>``.

    ``examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com`` -> ``examplecluster.us-west-2:5439``;
    a Serverless host ``wg.123456789012.us-east-1.redshift-serverless.amazonaws.com`` -> ``wg.us-east-1:5439``.

    :raises ValueError: no host.
    """
    if not host:
        raise ValueError("the warehouse connection has no host: cannot name the Redshift dataset")
    parts = host.lower().split(".")
    aws_parts = {".amazonaws.com": 6, ".amazonaws.com.cn": 7}  # AWS China regions: one more part
    if any(host.lower().endswith(suffix) and len(parts) == n for suffix, n in aws_parts.items()):
        identifier = f"{parts[0]}.{parts[2]}"
    else:
        identifier = host.lower()
    return f"{identifier}:{port or REDSHIFT_PORT}"


def s3_dataset_name(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (namespace ``s3://bucket``, name ``key``).

    :raises ValueError: not an ``s3://`` URL with a key.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise ValueError(f"expected s3://bucket/key, got {url!r}")
    return f"s3://{parts.netloc}", parts.path.lstrip("/")


def copy_facets(
    inputs: Iterable[str],
    table: str,
    schema_columns: Iterable[tuple[str, str]],
    rows_loaded: int | None,
    rows_rejected: int | None,
    *,
    host: str | None,
    database: str | None,
    port: int | None = None,
    size_bytes: int | None = None,
    copy_query_id: int | None = None,
    first_error: str | None = None,
    file_id: str | None = None,
    replaced_table: bool = False,
) -> OperatorLineage:
    """The OpenLineage lineage of one COPY into Redshift.

    :param inputs: the S3 object(s) the COPY read, as ``s3://bucket/key`` URLs (the landed object, or
        the staged object(s) a prepare step wrote; list every object of a manifest).
    :param table: the target, ``schema.table`` (validated names, unquoted).
    :param schema_columns: the target's columns as (name, type), in table order.
    :param rows_loaded: ``pg_last_copy_count()`` of the COPY (rows).
    :param rows_rejected: rows the COPY skipped (MAXERROR), from the load-error table (rows).
    :param host: the warehouse connection's host; ``port``: its port (default 5439).
    :param database: the warehouse connection's database (``schema`` field of the connection).
    :param size_bytes: bytes of the landed object (input statistics).
    :param replaced_table: ``load_mode: replace``: the table was emptied first (lifecycle OVERWRITE).
    :returns: ``OperatorLineage`` with one input dataset per URL, one output dataset and the
        ``redshiftIngestLoad`` run facet.
    :raises ValueError: an input is not an S3 URL, ``table`` is not ``schema.table``, no host.
    """
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.base import InputDataset, OutputDataset
    from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet
    from openlineage.client.generated.lifecycle_state_change_dataset import (
        LifecycleStateChange,
        LifecycleStateChangeDatasetFacet,
    )
    from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    urls = list(inputs)
    schema_name, dot, table_name = table.partition(".")
    if not dot or not schema_name or not table_name:
        raise ValueError(f"expected schema.table, got {table!r}")
    rows_read = None if rows_loaded is None else rows_loaded + (rows_rejected or 0)
    input_datasets = []
    for url in urls:
        namespace, name = s3_dataset_name(url)
        stats = InputStatisticsInputDatasetFacet(
            rowCount=rows_read if len(urls) == 1 else None,
            size=size_bytes if len(urls) == 1 else None,
        )
        input_datasets.append(InputDataset(namespace=namespace, name=name, inputFacets={"inputStatistics": stats}))
    facets: dict[str, Any] = {
        "schema": SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=name, type=type_) for name, type_ in schema_columns]
        )
    }
    if replaced_table:
        facets["lifecycleStateChange"] = LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=LifecycleStateChange.OVERWRITE
        )
    output = OutputDataset(
        namespace=f"redshift://{redshift_authority(host, port)}",
        name=f"{database}.{schema_name}.{table_name}" if database else f"{schema_name}.{table_name}",
        facets=facets,
        outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows_loaded)},
    )
    run_facet = RedshiftIngestLoadRunFacet(
        fileId=file_id,
        rowsLoaded=rows_loaded,
        rowsRejected=rows_rejected,
        copyQueryId=copy_query_id,
        firstError=first_error,
    )
    return OperatorLineage(inputs=input_datasets, outputs=[output], run_facets={"redshiftIngestLoad": run_facet})


def table_columns(cur, table: str) -> list[tuple[str, str]]:
    """(column name, data type) of ``schema.table`` from ``information_schema.columns``, in order
    (the query the Amazon provider's ``get_facets_from_redshift_table`` runs, with bound values)."""
    schema_name, _, table_name = table.partition(".")
    from redshift_ingest.sql import render

    cur.execute(render("load/table_columns.sql"), {"schema": schema_name, "table": table_name})
    return [(name, type_) for name, type_ in cur.fetchall()]


def load_event_extra(file_type: FileType, row: Mapping[str, Any]) -> dict[str, Any]:
    """The asset event ``extra`` of one loaded file (JSON-serialisable; counts in rows, size in bytes)."""
    return {
        "file_type": file_type.name,
        "file_id": row.get("file_id"),
        "s3_url": f"s3://{row.get('bucket')}/{row.get('s3_key')}",
        "status": row.get("status"),
        "rows_loaded": row.get("rows_loaded"),
        "rows_rejected": row.get("rows_rejected"),
        "size_bytes": row.get("size_bytes"),
        "copy_query_id": row.get("copy_query_id"),
    }


def record_load_event(context: Mapping[str, Any], asset: Asset, file_type: FileType, row: Mapping[str, Any]) -> None:
    """Put :func:`load_event_extra` into the running task's event for ``asset`` (its outlet).

    Call from the task that declares ``outlets=[asset]`` (``mark_done``), with the register row.
    """
    context["outlet_events"][asset].extra.update(load_event_extra(file_type, row))


def copy_inputs(claimed: Mapping[str, Any], prepared: Mapping[str, Any] | None) -> list[str]:
    """What the COPY read, as S3 URLs: the staged object(s) when ``prepare_file`` staged any
    (``prepared["staged_keys"]``, in the claimed file's bucket), else the landed object."""
    staged = list((prepared or {}).get("staged_keys") or [])
    bucket = claimed["bucket"]
    data = [key for key in staged if not key.endswith("/" + MANIFEST_NAME)]  # the data, not its manifest
    return [f"s3://{bucket}/{key}" for key in data] or [f"s3://{bucket}/{claimed['key']}"]


def load_lineage(
    file_type: FileType, settings: Settings, claimed: Mapping[str, Any], prepared: Mapping[str, Any] | None
) -> OperatorLineage:
    """The lineage of one finished COPY, from the register and the warehouse connection.

    For ``CopyIntoTargetOperator.get_openlineage_facets_on_complete``: ``claimed`` and ``prepared``
    are the operator's (rendered) ``claimed_file`` and ``prepared``. Reads the register row (rows
    loaded / rejected, first error, COPY query id, size) and the target's columns on one short
    connection; the connection's host, port and database (its ``schema`` field) name the output.

    :raises ValueError: the file is not in the register, or the connection has no host.
    """
    from redshift_ingest import register
    from redshift_ingest.hooks.warehouse import WarehouseHook

    hook = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id)
    connection = hook.get_connection(settings.warehouse_conn_id)
    table = str(file_type.target.table)
    conn = hook.get_conn()
    try:
        row = register.get_file(conn, settings, claimed["file_id"])
        with conn.cursor() as cur:
            columns = table_columns(cur, table)
        conn.rollback()
    finally:
        conn.close()
    if row is None:
        raise ValueError(f"file_id {claimed['file_id']} is not in the register")
    return copy_facets(
        copy_inputs(claimed, prepared),
        table,
        columns,
        row["rows_loaded"],
        row["rows_rejected"],
        host=connection.host,
        port=connection.port,
        database=connection.schema,
        size_bytes=row["size_bytes"],
        copy_query_id=row["copy_query_id"],
        first_error=row["first_error"],
        file_id=row["file_id"],
        replaced_table=file_type.load_mode == "replace",
    )
