"""A long COPY keeps its files' leases alive, so the reaper never takes back a claim whose COPY is
still running (a slow but live load is not a dead worker)."""

from __future__ import annotations

import time
from datetime import timedelta

from redshift_ingest import register
from redshift_ingest.operators.copy_into_target import _LeaseKeeper
from redshift_ingest.reaper import reap_expired_claims
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"


def claim_one(warehouse, settings, key: str, run_id: str):
    """Register one weather object and claim it for ``run_id``: (the claim, its lease's expiry)."""
    obj = S3Object(BUCKET, key, 10, "abc")
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    [claimed] = register.claim_batch(
        warehouse, settings, file_type="seattle_weather", dag_id="d", run_id=run_id, max_files=1, max_bytes=100
    )
    lease = register.get_file(warehouse, settings, claimed.file_id)["lease_expires_at"]
    warehouse.rollback()
    return claimed, lease


def test_the_lease_is_renewed_while_the_step_runs_and_the_reaper_leaves_it(warehouse, settings, landing):
    claimed, first = claim_one(warehouse, settings, "landing/weather/slow.csv", "slow")

    keeper = _LeaseKeeper(settings, "slow", [claimed.file_id])
    keeper.interval = 0.2  # a third of the lease in production; short here
    with keeper:
        time.sleep(1.5)  # the "COPY" runs
        renewed = register.get_file(warehouse, settings, claimed.file_id)["lease_expires_at"]
        warehouse.rollback()
        assert renewed > first
        # The reaper runs at the first lease's expiry: the claim is alive, nothing is reaped.
        # (The register is shared with other tests: only this file's claim is looked at.)
        reaped = reap_expired_claims(warehouse, settings, now=first + timedelta(milliseconds=500))
        assert claimed.file_id not in [r.file_id for r in reaped]
    row = register.get_file(warehouse, settings, claimed.file_id)
    warehouse.rollback()
    assert (row["status"], row["run_id"]) == ("IN_PROGRESS", "slow")
    # Once the step ends, renewals stop: a dead run's claim expires and is reaped as before.
    later = row["lease_expires_at"] + timedelta(seconds=1)
    assert claimed.file_id in [r.file_id for r in reap_expired_claims(warehouse, settings, now=later)]


def test_no_renewal_while_the_load_transaction_is_open(warehouse, settings, landing):
    """The load's transaction updates these register rows when it records the loads: on Redshift a
    write by another session after it began fails it with 1023. The keeper renews just before the
    transaction (a full lease) and writes nothing until it ends."""
    claimed, claim_lease = claim_one(warehouse, settings, "landing/weather/held.csv", "held")

    keeper = _LeaseKeeper(settings, "held", [claimed.file_id])
    keeper.interval = 0.2
    with keeper:
        with keeper.held():
            at_start = register.get_file(warehouse, settings, claimed.file_id)["lease_expires_at"]
            warehouse.rollback()
            time.sleep(1.5)  # the load transaction runs: several intervals pass
            during = register.get_file(warehouse, settings, claimed.file_id)["lease_expires_at"]
            warehouse.rollback()
        time.sleep(1.0)  # the transaction ended: renewals resume
        after = register.get_file(warehouse, settings, claimed.file_id)["lease_expires_at"]
        warehouse.rollback()
    assert at_start > claim_lease  # renewed (committed) just before the transaction
    assert during == at_start  # and not touched while it was open
    assert after > during
