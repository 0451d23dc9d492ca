"""The register's housekeeping DAGs: ``reap_expired_claims`` and ``reconcile_landing``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task

from redshift_ingest.config import FileType, Settings
from redshift_ingest.dag_factory import START_DATE

OWNER = "data-platform"


def build_reaper_dag(settings: Settings, file_types: tuple[FileType, ...]) -> DAG:
    """``reap_expired_claims``: every 15 minutes, expired claims go back to NEW (or FAILED, alerted)."""
    with DAG(
        dag_id="reap_expired_claims",
        description="Return claims of dead runs to NEW, or FAILED after max_attempts",
        schedule=timedelta(minutes=15),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": OWNER, "retries": 2, "retry_delay": timedelta(minutes=1)},
        tags=["ingest"],
        doc_md=__doc__,
    ) as dag:

        @task(task_id="reap_claims")
        def reap_claims(**context: Any) -> dict[str, list[str]]:
            from redshift_ingest.hooks.warehouse import WarehouseHook
            from redshift_ingest.notifications import FileAlert, send_alert
            from redshift_ingest.reaper import reap_expired_claims

            conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
            try:
                reaped = reap_expired_claims(conn, settings)
            finally:
                conn.close()
            by_name = {ft.name: ft for ft in file_types}
            for item in reaped:
                file_type = by_name.get(item.file_type)
                if item.outcome == "failed" and file_type is not None:
                    row = item.row
                    alert = FileAlert(
                        file_type=item.file_type,
                        dag_id=context["dag"].dag_id,
                        run_id=context["run_id"],
                        status="FAILED",
                        bucket=row["bucket"],
                        key=row["s3_key"],
                        size_bytes=row["size_bytes"],
                        error_message=f"claim of run {row['run_id']} expired after {row['attempts']} attempts",
                        file_location=item.url,
                    )
                    send_alert(alert, file_type, settings, context)
            return {
                "released": [r.url for r in reaped if r.outcome == "released"],
                "failed": [r.url for r in reaped if r.outcome == "failed"],
            }

        reap_claims()
    return dag


def build_reconcile_dag(settings: Settings, file_types: tuple[FileType, ...]) -> DAG:
    """``reconcile_landing``: hourly, register what S3 events missed and report vanished objects."""
    with DAG(
        dag_id="reconcile_landing",
        description="Register landed objects the S3 events missed; report registered objects that vanished",
        schedule="@hourly",
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": OWNER, "retries": 2, "retry_delay": timedelta(minutes=2)},
        tags=["ingest"],
        doc_md="S3 delivers events at least once and a failed Lambda can lose them: this DAG lists "
        f"`s3://{settings.landing_bucket}/{settings.landing_prefix}` and registers what the register lacks.",
    ) as dag:

        @task(task_id="reconcile_register")
        def reconcile_register() -> dict[str, list[str]]:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            from redshift_ingest.hooks.warehouse import WarehouseHook
            from redshift_ingest.register import ensure_register
            from redshift_ingest.registration import reconcile

            conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
            try:
                ensure_register(conn, settings)
                return reconcile(conn, settings, file_types, S3Hook(aws_conn_id=settings.aws_conn_id).get_conn())
            finally:
                conn.close()

        reconcile_register()
    return dag
