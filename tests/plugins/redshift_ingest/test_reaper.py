"""The reaper: expired claims go back to NEW (keeping a committed load) or FAILED after max_attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from redshift_ingest import register
from redshift_ingest.reaper import reap_expired_claims
from redshift_ingest.register import S3Object

pytestmark = pytest.mark.usefixtures("landing")
LATER = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)  # leases are naive UTC


def claimed(warehouse, settings, key: str, run_id: str = "r1") -> str:
    obj = S3Object("example-landing-bucket", key, 1, "etag-" + key)
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    register.claim_file(warehouse, settings, file_type="seattle_weather", selection="all", dag_id="d", run_id=run_id)
    return obj.file_id


def test_live_claims_are_left_alone(warehouse, settings):
    claimed(warehouse, settings, "landing/weather/live.csv")
    assert reap_expired_claims(warehouse, settings) == []


def test_expired_claim_goes_back_to_new_with_history(warehouse, settings):
    file_id = claimed(warehouse, settings, "landing/weather/dead.csv")
    [reaped] = reap_expired_claims(warehouse, settings, now=LATER)
    assert reaped.outcome == "released"
    row = register.get_file(warehouse, settings, file_id)
    warehouse.rollback()
    assert row["status"] == "NEW" and row["run_id"] is None
    # The dead run cannot come back and touch it.
    with pytest.raises(register.ClaimLost):
        register.require_claim(warehouse, settings, file_id, "r1")


def test_a_committed_load_survives_the_reaper(warehouse, settings):
    file_id = claimed(warehouse, settings, "landing/weather/loaded.csv")
    with warehouse.cursor() as cur:
        register.record_load(
            cur, settings, file_id, "r1", copy_query_id=7, rows_loaded=3, rows_rejected=0, first_error=None
        )
    warehouse.commit()
    reap_expired_claims(warehouse, settings, now=LATER)
    again = register.claim_file(
        warehouse, settings, file_type="seattle_weather", selection="all", dag_id="d", run_id="r2"
    )
    assert again.file_id == file_id
    row = register.require_claim(warehouse, settings, file_id, "r2")
    assert row["loaded_at"] is not None and row["rows_loaded"] == 3  # the next COPY is skipped


def test_too_many_attempts_fail_the_file(warehouse, settings):
    file_id = claimed(warehouse, settings, "landing/weather/cursed.csv", run_id="r1")
    for attempt in range(2, settings.max_attempts + 1):
        reap_expired_claims(warehouse, settings, now=LATER)
        register.claim_file(
            warehouse, settings, file_type="seattle_weather", selection="all", dag_id="d", run_id=f"r{attempt}"
        )
    [reaped] = reap_expired_claims(warehouse, settings, now=LATER)
    assert reaped.outcome == "failed"
    row = register.get_file(warehouse, settings, file_id)
    warehouse.rollback()
    assert row["status"] == "FAILED" and "expired" in row["error_message"]
    assert row["attempts"] == settings.max_attempts
