"""Airflow DAGs that keep the file register honest: ``reap_expired_claims``, ``reconcile_landing`` and
``register_health`` (backlog metrics, backlog and freshness alerts). Their tasks read the file-type
configs when they run; parsing this file reads only the settings."""

from redshift_ingest.config import default_settings
from redshift_ingest.maintenance import build_health_dag, build_reaper_dag, build_reconcile_dag

reap_expired_claims = build_reaper_dag(default_settings())
reconcile_landing = build_reconcile_dag(default_settings())
register_health = build_health_dag(default_settings())
