"""One factory, one DAG per file type: ``ingest_<name>``, two tasks.

``wait_for_new_file`` (the register sensor, deferred to the triggerer, which ends it without a worker
when a file is there; skipped after its timeout) -> ``load_files`` (claim a batch, the newest file, or
the file the params name; prepare; create the table when missing and COPY the batch in one
transaction; archive, DONE, one alert: :class:`~redshift_ingest.operators.ingest_files.IngestFilesOperator`).
Files at fault are set aside by the step that finds them; a failure callback on every task marks what
the failed step still held FAILED, keeps it and alerts the file type's channels.

Building a DAG does no I/O beyond the config files already read: connections, S3 and the warehouse
are touched inside tasks only. Parsing is kept cheap (the dag-processor parses every file type's DAG
in a fresh process each time): the task steps (:mod:`redshift_ingest.tasks`, with boto3, psycopg2 and
the providers they use) are imported when a task runs, not when the DAG file is parsed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param

from redshift_ingest.assets import asset_for
from redshift_ingest.config import START_DATE, FileType, Settings
from redshift_ingest.operators.ingest_files import IngestFilesOperator
from redshift_ingest.sensors import build_wait_sensor

# The run params declare a JSON Schema dialect and no ``type``. Airflow validates every Param with jsonschema
# each time it resolves one, ten times per DAG per parse (the DAG's own check, then twice per task while
# serializing), and jsonschema first checks the schema against its dialect's meta-schema: for a schema of
# no keyword but ``$schema`` (draft-07) that check costs a third of a typed draft-07 schema's, and an eighth
# of an empty schema's in the default dialect (2020-12); see docs/performance.md. The trigger form takes
# each field's kind from its default when there is no ``type`` (a text field for "", a switch for False),
# and the run checks the values itself (:func:`redshift_ingest.tasks.run_request`).
PARAM_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


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


def run_params() -> dict[str, Param]:
    """The ingest DAGs' run params (the UI's trigger form): ``file_id`` (text, "" for none) and ``force`` (a switch).

    :returns: new ``Param`` objects (Airflow sets a Param's value when it resolves one: never shared).
    """
    dialect = {"$schema": PARAM_SCHEMA_DIALECT}
    return {
        "file_id": Param(
            "",
            description="Reprocess this file (NEW or FAILED; DONE with force) instead of waiting for a NEW one.",
            **dialect,
        ),
        "force": Param(
            False,
            description="With file_id: reload a DONE file. Its earlier rows are replaced (no duplicates).",
            **dialect,
        ),
    }


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
        "**Rerun**: *Trigger DAG w/ config* with `file_id` to reprocess one NEW or FAILED file of this type;"
        " add `force: true` to reload a DONE file (its rows are replaced, not duplicated).",
    ]
    return "\n".join(lines)


def build_dag(file_type: FileType, settings: Settings) -> DAG:
    """The ingest DAG of one file type.

    :param file_type: validated config.
    :param settings: shared settings.
    :returns: a DAG with ``dag_id = ingest_<name>``.
    """
    default_args: dict[str, Any] = {
        "owner": file_type.owner,
        "retries": file_type.retries,
        "retry_delay": timedelta(seconds=file_type.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    }
    # Given to each task, not in default_args: Airflow serializes a callable in default_args by reading its
    # source code (inspect.getsource) at every parse, and then keeps only the fact that there is one.
    on_failure = FailureCallback(file_type, settings)
    with DAG(
        dag_id=file_type.dag_id,
        description=file_type.description or f"Load {file_type.name} files into {file_type.target.table}",
        schedule=file_type.schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=sorted({"ingest", *file_type.tags}),
        doc_md=doc_md(file_type, settings),
        params=run_params(),
        render_template_as_native_obj=False,
    ) as dag:
        wait_for_new_file = build_wait_sensor(file_type, settings, on_failure_callback=on_failure)
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
            on_failure_callback=on_failure,
        )
        wait_for_new_file >> load_files
    return dag
