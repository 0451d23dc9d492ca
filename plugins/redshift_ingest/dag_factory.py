"""One factory, one DAG per file type: ``ingest_<name>``, two tasks.

``wait_for_new_file`` (the register sensor, deferred to the triggerer, which ends it without a worker
when a file is there; skipped after its timeout) -> ``load_files`` (claim a batch, the newest file, or
the file the run's conf names; prepare; create the table when missing and COPY the batch in one
transaction; archive, DONE, one alert: :class:`~redshift_ingest.operators.ingest_files.IngestFilesOperator`).
Files at fault are set aside by the step that finds them; a failure callback on every task marks what
the failed step still held FAILED, keeps it and alerts the file type's channels.

Building a DAG does no I/O beyond the config files already read: connections, S3 and the warehouse
are touched inside tasks only. Parsing is kept cheap (the dag-processor parses every file type's DAG
in a fresh process each time): the task steps (:mod:`redshift_ingest.tasks`, with boto3, psycopg2 and
the providers they use) are imported when a task runs, not when the DAG file is parsed.

The DAGs declare no run params. A run is asked for one file by its conf, ``{"file_id": "...", "force":
true}`` (Trigger Dag's "Configuration JSON", the File register view's Replay buttons, the REST API),
which Airflow hands the tasks as ``params`` (``core.dag_run_conf_overrides_params``, on by default);
the run checks it (:func:`redshift_ingest.tasks.run_request`). Declared params would put two fields in
the trigger form, for about a third of the cost of parsing the DAG folder: Airflow deep-copies every
Param into each task and validates it with jsonschema ten times per DAG per parse (docs/performance.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG

from redshift_ingest.assets import asset_for
from redshift_ingest.config import START_DATE, FileType, Settings
from redshift_ingest.operators.ingest_files import IngestFilesOperator
from redshift_ingest.sensors import build_wait_sensor


class FailureCallback:
    """``on_failure_callback`` of every ingest task: :class:`redshift_ingest.tasks.FailureHandler`,
    imported when a task fails rather than when the DAG file is parsed.

    :param file_type: the DAG's file type.
    :param settings: shared settings.
    """

    def __init__(self, file_type: FileType, settings: Settings) -> None:
        self.file_type = file_type
        self.settings = settings

    def __call__(self, context: dict[str, Any]) -> None:
        """Mark what the failed step still held FAILED and alert (see ``FailureHandler``)."""
        from redshift_ingest.tasks import FailureHandler

        FailureHandler(self.file_type, self.settings)(context)


def doc_md(file_type: FileType, settings: Settings) -> str:
    """The DAG's documentation in the UI, generated from its config."""
    opts = file_type.copy_options.model_dump(exclude_defaults=True)
    lines = [
        f"# Ingest `{file_type.name}`",
        file_type.description or "",
        "",
        "| | |",
        "|---|---|",
        f"| Landing | `s3://{settings.landing_bucket}/{file_type.source.prefix}{file_type.source.pattern}` |",
        f"| Target | `{file_type.target.table}` (DDL `include/sql/{file_type.target.ddl}`) |",
        f"| Format | {file_type.format}, compression {file_type.compression} |",
        f"| COPY options | `{opts or 'defaults'}` |",
        f"| Selection | {file_type.selection}"
        + (
            f" (batches of up to {file_type.batch.max_files:,} files, {file_type.batch.max_bytes:,} bytes) |"
            if file_type.selection == "all"
            else " |"
        ),
        f"| Load mode | {file_type.load_mode} |",
        f"| Register | `{settings.register_table}` |",
        f"| Archive / quarantine | `{settings.archive_prefix}` / `{settings.quarantine_prefix}` |",
        f"| Alerts | slack: {file_type.alerts.slack}, email: {', '.join(file_type.alerts.email) or '-'} |",
        f"| Owner | {file_type.owner} |",
        f"| file_id column | {file_type.target.file_id_column or '-'} "
        f"(a new version of a key: {file_type.target.on_new_version} the earlier rows) |",
        "",
        "**Rerun**: the File register view's *Replay* / *Force reload*, or *Trigger Dag* with the configuration"
        ' JSON `{"file_id": "<file_id>"}` to reprocess one NEW or FAILED file of this type;'
        ' `{"file_id": "<file_id>", "force": true}` reloads a DONE file (its rows are replaced, not duplicated).',
    ]
    return "\n".join(lines)


def build_dag(file_type: FileType, settings: Settings) -> DAG:
    """The ingest DAG of one file type.

    :param file_type: validated config.
    :param settings: shared settings.
    :returns: a DAG with ``dag_id = ingest_<name>``.
    """
    # Each task gets its arguments directly, not through the DAG's default_args: Airflow deep-copies
    # default_args into every task it builds and serializes them once more with the DAG, at every parse;
    # a callable there (the failure callback) it would serialize by reading its source (inspect.getsource).
    task_args: dict[str, Any] = {
        "owner": file_type.owner,
        "retries": file_type.retries,
        "retry_delay": timedelta(seconds=file_type.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": FailureCallback(file_type, settings),
    }
    with DAG(
        dag_id=file_type.dag_id,
        description=file_type.description or f"Load {file_type.name} files into {file_type.target.table}",
        schedule=file_type.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"ingest", *file_type.tags}),
        doc_md=doc_md(file_type, settings),
        render_template_as_native_obj=False,
    ) as dag:
        wait_for_new_file = build_wait_sensor(file_type, settings, **task_args)
        # The operator's plain arguments carry the COPY (rendered in the UI); file_type the register policy.
        load_files = IngestFilesOperator(
            task_id="load_files",
            table=str(file_type.target.table),
            format=file_type.format,
            copy_options=file_type.copy_options.model_dump(exclude_defaults=True),
            redshift_conn_id=settings.warehouse_conn_id,
            aws_conn_id=settings.aws_conn_id,
            staging_prefix=settings.staging_prefix,
            load_errors_source=settings.load_errors_source,
            file_type=file_type,
            settings=settings,
            outlets=[asset_for(file_type, settings)],
            **task_args,
        )
        wait_for_new_file >> load_files
    return dag
