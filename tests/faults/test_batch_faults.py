"""Exactly once for batches: a run that claims several files is killed inside its one COPY
transaction, after its commit while archiving, races another run, meets a bad file, or sees a key
overwritten while it loads. Same invariants as one-file loads, per file: one terminal state, its
rows exactly once (counted per ``file_id``), the object in exactly one place.

The files are slices of the real Seattle weather data set. ``make test`` runs one scenario;
``make chaos`` runs them all and adds them to the tally.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from faults.harness import file_type_spec, kill_when, run_dag, staging_copies_held, start_dag
from faults.test_fault_injection import DATA, TALLY, copy_in_progress
from redshift_ingest import register
from redshift_ingest.reaper import reap_expired_claims
from redshift_ingest.register import S3Object
from tests.warehouse_checks import rows_per_file

BUCKET = "example-landing-bucket"
_ids = itertools.count()


def slices(n: int, repeat: int = 1) -> list[bytes]:
    header, *rows = (DATA / "csv/seattle-weather.csv").read_bytes().splitlines(keepends=True)
    rows = rows * repeat
    size = -(-len(rows) // n)
    return [header + b"".join(rows[i : i + size]) for i in range(0, len(rows), size)]


@pytest.fixture
def batch(landing, warehouse, settings):
    """Land and register a batch of weather files for a file type loading its own table."""

    def setup(bodies: list[bytes], **changes) -> dict:
        n = next(_ids)
        table = f"chaos.batch{n}_weather"
        files = []
        for i, body in enumerate(bodies):
            key = f"landing/weather/batch{n}-{i:02}.csv"
            landing.put_object(Bucket=BUCKET, Key=key, Body=body)
            head = landing.head_object(Bucket=BUCKET, Key=key)
            obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
            register.register_object(warehouse, settings, obj, "seattle_weather", "test")
            files.append({"key": key, "file_id": obj.file_id, "rows": len(body.splitlines()) - 1})
        return {"files": files, "table": table, "spec": file_type_spec("seattle_weather", table, **changes)}

    return setup


def rows_of(warehouse, settings, files) -> list[dict]:
    out = [register.get_file(warehouse, settings, f["file_id"]) for f in files]
    warehouse.rollback()
    return out


def recover(case, warehouse, settings, max_runs: int = 4) -> None:
    """Production's recovery: expired leases are reaped, the next runs load what is left."""
    for _ in range(max_runs):
        found = rows_of(warehouse, settings, case["files"])
        if all(r["status"] in register.TERMINAL for r in found):
            return
        if any(r["status"] == "IN_PROGRESS" for r in found):
            later = datetime.now(UTC).replace(tzinfo=None) + settings.lease + timedelta(minutes=1)
            reap_expired_claims(warehouse, settings, now=later)
        run_dag(case["spec"])


def check(case, warehouse, settings, landing, expect: dict[str, str] | None = None) -> None:
    """Every file terminal as expected (default DONE), its rows once, its object in one place."""
    expect = expect or {}
    found = {r["file_id"]: r for r in rows_of(warehouse, settings, case["files"])}
    in_table = rows_per_file(warehouse, case["table"])
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    duplicates = losses = 0
    for f in case["files"]:
        status = expect.get(f["file_id"], "DONE")
        row = found[f["file_id"]]
        places = [p for p in ("", "archive/", "quarantine/") if p + f["key"] in keys]
        want_rows = f["rows"] if status == "DONE" else 0
        duplicates += max(0, in_table.get(f["file_id"], 0) - want_rows)
        losses += int(in_table.get(f["file_id"], 0) < want_rows or len(places) != 1)
        assert row["status"] == status, row
        assert in_table.get(f["file_id"], 0) == want_rows, (f, in_table)
        if status == "DONE":
            assert row["rows_loaded"] == f["rows"] and places == ["archive/"]
    TALLY["scenarios"] += 1
    TALLY["duplicates"] += duplicates
    TALLY["losses"] += losses
    assert not [k for k in keys if k.startswith("staging/")]


def archived_some(landing, case) -> str | None:
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    moved = [f for f in case["files"] if "archive/" + f["key"] in keys]
    return f"{len(moved)} of {len(case['files'])} archived" if moved and len(moved) < len(case["files"]) else None


def test_batch_killed_while_archiving(batch, warehouse, settings, landing):
    """The batch COPY committed; the worker dies with some files archived and others not."""
    case = batch(slices(12))
    worker = start_dag(case["spec"])
    kill_when(worker, lambda: archived_some(landing, case))
    recover(case, warehouse, settings)
    check(case, warehouse, settings, landing)


@pytest.mark.slow
def test_batch_killed_inside_its_copy(batch, warehouse, settings, landing, stack):
    case = batch(slices(4, repeat=5))
    with staging_copies_held(stack.postgres.dsn, 4):  # the batch COPY is a window to kill in, not a race
        worker = start_dag(case["spec"])
        seen = kill_when(worker, lambda: copy_in_progress(stack) and "COPY running")
    assert seen.killed
    recover(case, warehouse, settings)
    check(case, warehouse, settings, landing)


@pytest.mark.slow
def test_a_bad_file_in_the_middle_of_a_batch(batch, warehouse, settings, landing):
    bodies = slices(5)
    bodies[2] = bodies[2].replace(b"2014-", b"20X4-", 1)
    case = batch(bodies)
    run_dag(case["spec"])
    recover(case, warehouse, settings)
    bad = case["files"][2]
    check(case, warehouse, settings, landing, {bad["file_id"]: "FAILED"})
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert "quarantine/" + bad["key"] in keys


@pytest.mark.slow
def test_two_runs_race_over_one_backlog(batch, warehouse, settings, landing):
    case = batch(slices(8), batch={"max_files": 3, "max_bytes": 10**9})
    first, second = start_dag(case["spec"]), start_dag(case["spec"])
    first.wait(timeout=300)
    second.wait(timeout=300)
    recover(case, warehouse, settings, max_runs=6)
    check(case, warehouse, settings, landing)


@pytest.mark.slow
def test_a_new_version_lands_while_its_batch_loads(batch, warehouse, settings, landing, stack):
    """v1 of a key is in a batch whose COPY is running when v2 overwrites it: v1 is never loaded
    under its id (its object is gone), v2 loads in a later run, the other files load once."""
    case = batch(slices(4, repeat=5))
    target = case["files"][1]
    with staging_copies_held(stack.postgres.dsn, 4):  # the batch COPY is held open while v2 lands
        worker = start_dag(case["spec"])
        deadline = time.monotonic() + 120
        while not copy_in_progress(stack) and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert copy_in_progress(stack), "the batch COPY was never seen running"
    new_body = slices(2)[0]
    landing.put_object(Bucket=BUCKET, Key=target["key"], Body=new_body)
    head = landing.head_object(Bucket=BUCKET, Key=target["key"])
    modified = head["LastModified"].astimezone(UTC).replace(tzinfo=None)
    v2 = S3Object(BUCKET, target["key"], head["ContentLength"], head["ETag"].strip('"'), None, modified)
    register.register_object(warehouse, settings, v2, "seattle_weather", "test")
    case["files"].append({"key": target["key"], "file_id": v2.file_id, "rows": len(new_body.splitlines()) - 1})
    worker.wait(timeout=300)
    recover(case, warehouse, settings)
    v1 = register.get_file(warehouse, settings, target["file_id"])
    warehouse.rollback()
    assert v1["status"] in ("FILTERED_OUT", "REPLACED"), v1
    others = {f["file_id"]: "DONE" for f in case["files"] if f["key"] != target["key"]}
    expect = {**others, target["file_id"]: v1["status"], v2.file_id: "DONE"}
    found = {r["file_id"]: r["status"] for r in rows_of(warehouse, settings, case["files"])}
    assert found == expect
    in_table = rows_per_file(warehouse, case["table"])
    assert in_table.get(target["file_id"], 0) == 0 and in_table[v2.file_id] == case["files"][-1]["rows"]
    for f in case["files"]:
        if f["key"] != target["key"]:
            assert in_table[f["file_id"]] == f["rows"]
    TALLY["scenarios"] += 1
