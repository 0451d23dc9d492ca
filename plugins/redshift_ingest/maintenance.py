"""The register's housekeeping DAGs: ``reap_expired_claims``, ``reconcile_landing`` and ``register_health``.

Their shape does not depend on the file types, so building them reads no file-type config: given no
``file_types``, a task reads the deployed ones when it runs (the dag-processor parses this DAG file in a
fresh process every time, and the ingest DAGs' file already reads every config). With a config refused,
``reconcile_landing`` and ``register_health`` fail naming it (reconcile would otherwise register the refused
type's keys as UNMATCHED); ``reap_expired_claims`` keeps releasing expired claims, alerting through the
valid file types' channels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from redshift_ingest.config import START_DATE, FileType, Settings, default_file_types, default_report

OWNER = "data-platform"


def build_reaper_dag(settings: Settings, file_types: tuple[FileType, ...] | None = None) -> DAG:
    """``reap_expired_claims``: every 15 minutes, expired claims go back to NEW (or FAILED, alerted).

    :param file_types: whose alert channels a FAILED claim's alert uses; None: the deployed valid ones,
        read when the task runs.
    """
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
            by_name = {ft.name: ft for ft in (default_report().file_types if file_types is None else file_types)}
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


def build_reconcile_dag(settings: Settings, file_types: tuple[FileType, ...] | None = None) -> DAG:
    """``reconcile_landing``: hourly, register what S3 events missed and report vanished objects.

    :param file_types: what landed keys are matched against; None: the deployed ones, read when the task
        runs (:raises ConfigError: then, while any deployed config is refused).
    """
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
            from redshift_ingest.registration import ensure_register_if_missing, reconcile

            matched = default_file_types() if file_types is None else file_types  # first: a refused config stops it
            conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
            try:
                ensure_register_if_missing(conn, settings)  # the DAGs' user may not run the DDL
                return reconcile(conn, settings, matched, S3Hook(aws_conn_id=settings.aws_conn_id).get_conn())
            finally:
                conn.close()

        reconcile_register()
    return dag


HEALTH_EVERY = timedelta(minutes=5)


def build_health_dag(settings: Settings, file_types: tuple[FileType, ...] | None = None) -> DAG:
    """``register_health``: every 5 minutes, the backlog metrics of every file type and the backlog
    and freshness alerts (``alerts.backlog_minutes``, ``alerts.expect_every``), once per incident
    with a resolution message (state in ``<register>_alerts``; see :mod:`redshift_ingest.health`).

    :param file_types: the file types checked; None: the deployed ones, read when the task runs
        (:raises ConfigError: then, while any deployed config is refused).
    """
    with DAG(
        dag_id="register_health",
        description="Backlog metrics per file type; backlog and silent-feed alerts, once per incident",
        schedule=HEALTH_EVERY,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": OWNER, "retries": 2, "retry_delay": timedelta(minutes=1)},
        tags=["ingest"],
        doc_md="Emits `redshift_ingest.backlog_files.<file_type>` and "
        "`redshift_ingest.backlog_age_seconds.<file_type>`; alerts when the oldest NEW file is older than "
        "`alerts.backlog_minutes` or no file arrived for `alerts.expect_every`, and again when it is resolved.",
    ) as dag:

        @task(task_id="check_backlog_and_freshness")
        def check_backlog_and_freshness(**context: Any) -> dict[str, list[str]]:
            return check_health(settings, default_file_types() if file_types is None else file_types, context)

        check_backlog_and_freshness()
    return dag


def check_health(
    settings: Settings, file_types: tuple[FileType, ...], context: Any, now: datetime | None = None
) -> dict[str, list[str]]:
    """One health check: backlog gauges for every file type, then alerts for incidents that opened
    and resolutions for those that closed.

    :returns: ``{"opened": ["<file_type> <kind>", ...], "resolved": [...]}`` (XCom).
    """
    from redshift_ingest import health, metrics
    from redshift_ingest.hooks.warehouse import WarehouseHook
    from redshift_ingest.notifications import FileAlert, send_alert
    from redshift_ingest.registration import ensure_register_if_missing

    now = now or datetime.now(UTC).replace(tzinfo=None)
    conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
    try:
        ensure_register_if_missing(conn, settings)
        health.ensure_alert_state(conn, settings)
        states = health.file_type_health(conn, settings, file_types)
        for state in states:
            metrics.backlog(state.file_type, state.new_files, state.oldest_new_age(now))
        current = health.current_incidents(conn, settings, file_types, states, now)
        opened, closed = health.track_incidents(conn, settings, current, now)
    finally:
        conn.close()
    by_name = {ft.name: ft for ft in file_types}
    dag_id, run_id = context["dag"].dag_id, context["run_id"]
    for incident in opened:
        alert = FileAlert(
            file_type=incident.file_type,
            dag_id=dag_id,
            run_id=run_id,
            status=incident.kind,
            bucket=incident.bucket,
            key=incident.key,
            error_message=incident.detail,
        )
        send_alert(alert, by_name[incident.file_type], settings, context)
    for row in closed:
        file_type = by_name.get(row["file_type"])
        if file_type is None:
            continue  # a file type removed from the config: its incident closes silently
        alert = FileAlert(
            file_type=file_type.name,
            dag_id=dag_id,
            run_id=run_id,
            status=f"RESOLVED {row['kind']}",
            bucket=settings.landing_bucket,
            key=file_type.source.prefix,
            error_message=f"resolved after {now - row['opened_at']} (opened {row['opened_at']:%Y-%m-%d %H:%M} UTC: "
            f"{row['detail']})",
        )
        send_alert(alert, file_type, settings, context)
    return {
        "opened": [f"{i.file_type} {i.kind}" for i in opened],
        "resolved": [f"{r['file_type']} {r['kind']}" for r in closed],
    }
