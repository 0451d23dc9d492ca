"""The register's housekeeping DAGs, run for real: reconcile registers what events missed; the reaper
releases the claim of a dead run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redshift_ingest import register
from redshift_ingest.config import default_file_types
from redshift_ingest.maintenance import build_reaper_dag, build_reconcile_dag
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"


def test_reconcile_landing_registers_missed_objects(landing, warehouse, settings):
    landing.put_object(Bucket=BUCKET, Key="landing/weather/missed.csv", Body=b"date\n")
    landing.put_object(Bucket=BUCKET, Key="landing/odd/thing.bin", Body=b"?")
    build_reconcile_dag(settings, default_file_types()).test()
    with warehouse.cursor() as cur:
        cur.execute("SELECT s3_key, file_type, status, registered_by FROM public.mng ORDER BY s3_key")
        rows = cur.fetchall()
    assert rows == [
        ("landing/odd/thing.bin", None, "UNMATCHED", "reconcile"),
        ("landing/weather/missed.csv", "seattle_weather", "NEW", "reconcile"),
    ]


def test_reap_expired_claims_releases_a_dead_runs_claim(landing, warehouse, settings):
    obj = S3Object(BUCKET, "landing/weather/dead-run.csv", 1, "e")
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    register.claim_file(warehouse, settings, file_type="seattle_weather", selection="all", dag_id="d", run_id="dead")
    with warehouse.cursor() as cur:  # the dead run's lease ran out an hour ago
        cur.execute(
            "UPDATE public.mng SET lease_expires_at = %s WHERE file_id = %s",
            (datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1), obj.file_id),
        )
    warehouse.commit()
    build_reaper_dag(settings, default_file_types()).test()
    row = register.get_file(warehouse, settings, obj.file_id)
    assert row["status"] == "NEW" and row["run_id"] is None
