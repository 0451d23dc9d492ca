"""Exactly once under crashes, dropped connections and S3 outages, on real files.

Each scenario runs a file type's DAG in a worker process, injects one fault at a step boundary, lets
production's recovery work (Airflow retries; the reaper for a dead worker; the next run), and checks
the invariants for the file: it ends in one terminal state, its table holds its rows exactly once,
and the object is in exactly one of landing, archive or quarantine. Forced reloads and new versions
of a key (whose COPY transaction also deletes rows) are killed too, and checked per ``file_id``.
``make test`` runs the short form; ``make chaos`` runs every scenario (``-m slow``) and prints the
tally.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from faults.harness import file_type_spec, kill_when, run_dag, staging_copies_held, start_dag
from redshift_ingest import register
from redshift_ingest.reaper import reap_expired_claims
from redshift_ingest.register import S3Object
from tests.warehouse_checks import rows_per_file

DATA = Path(__file__).resolve().parents[2] / "data"
BUCKET = "example-landing-bucket"
_ids = itertools.count()
TALLY = {"scenarios": 0, "duplicates": 0, "losses": 0}


@dataclass(frozen=True)
class Sample:
    file_type: str
    path: Path
    key: str
    rows: int
    repeat: int = 1  # a CSV with a header: its rows this many times (a COPY long enough to catch)

    def body(self) -> bytes:
        data = self.path.read_bytes()
        if self.repeat == 1:
            return data
        header, _, rows = data.partition(b"\n")
        return header + b"\n" + rows * self.repeat


SAMPLES = {
    "weather": Sample("seattle_weather", DATA / "csv/seattle-weather.csv", "landing/weather/chaos-{n}.csv", 1461),
    "zip": Sample("languages", DATA / "zip/table.csv.zip", "landing/languages/chaos-{n}.zip", 2),
    "tickit": Sample("tickit_event", DATA / "tickit/event.txt", "landing/tickit/event/chaos-{n}.txt", 8798),
}
# Ten times the weather rows (14,610): a COPY that lasts long enough for "inside the COPY" kills.
WEATHER_X10 = Sample("seattle_weather", DATA / "csv/seattle-weather.csv", "landing/weather/chaos-{n}.csv", 14610, 10)


def row_of(conn, settings, file_id):
    row = register.get_file(conn, settings, file_id)
    conn.rollback()
    return row


def copy_in_progress(stack) -> int | None:
    """The backend pid of a COPY ... FROM STDIN running right now on the stand-in's PostgreSQL."""
    conn = psycopg2.connect(stack.postgres.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'COPY %%FROM STDIN%%'")
            found = cur.fetchone()
        return found[0] if found else None
    finally:
        conn.close()


def copies_held_for(point: str, case: dict, stack):
    """For a kill "inside the COPY": the case's COPYs (staging or its table) held open 4 s, a window to
    kill in rather than a race with a COPY of milliseconds; for other points, nothing."""
    if point != "inside_copy":
        return contextlib.nullcontext()
    return staging_copies_held(stack.postgres.dsn, 4, (case["table"],))


KILL_POINTS = {
    "after_claim": lambda row, stack: row["status"] == "IN_PROGRESS" and "claimed",
    "after_prepare": lambda row, stack: row["staged_from"] is not None and "staged",
    "inside_copy": lambda row, stack: copy_in_progress(stack) and "COPY running",
    "after_copy_commit": lambda row, stack: row["loaded_at"] is not None and "loaded",
    "after_archive": lambda row, stack: row["archive_key"] is not None and "archived",
}


@pytest.fixture
def scenario(landing, warehouse, settings, stack):
    """Land and register one sample; returns a helper that checks the invariants at the end."""

    def setup(sample_name: str) -> dict:
        sample = WEATHER_X10 if sample_name == "weather_x10" else SAMPLES[sample_name]
        n = next(_ids)
        key = sample.key.format(n=n)
        landing.put_object(Bucket=BUCKET, Key=key, Body=sample.body())
        head = landing.head_object(Bucket=BUCKET, Key=key)
        obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
        register.register_object(warehouse, settings, obj, sample.file_type, "test")
        table = f"chaos.t{n}_{sample.file_type}"
        return {
            "sample": sample,
            "key": key,
            "file_id": obj.file_id,
            "spec": file_type_spec(sample.file_type, table),
            "table": table,
        }

    return setup


def recover(case, warehouse, settings, max_runs: int = 3) -> None:
    """What production does after a dead worker: the lease expires, the reaper releases, a run loads."""
    for _ in range(max_runs):
        row = row_of(warehouse, settings, case["file_id"])
        if row["status"] in register.TERMINAL:
            return
        if row["status"] == "IN_PROGRESS":
            later = datetime.now(UTC).replace(tzinfo=None) + settings.lease + timedelta(minutes=1)
            reap_expired_claims(warehouse, settings, now=later)
        run_dag(case["spec"])


def check_invariants(case, warehouse, settings, landing) -> tuple[int, int]:
    """Assert the invariants; returns (duplicate rows, lost files) for the tally."""
    row = row_of(warehouse, settings, case["file_id"])
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {case['table']}")
        in_table = cur.fetchone()[0]
    warehouse.rollback()
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    places = [p for p in ("", "archive/", "quarantine/") if p + case["key"] in keys]
    expected = case["sample"].rows
    duplicates = max(0, in_table - expected)
    losses = int(in_table < expected or len(places) != 1)
    TALLY["scenarios"] += 1
    TALLY["duplicates"] += duplicates
    TALLY["losses"] += losses
    assert row["status"] == "DONE", row
    assert (in_table, row["rows_loaded"]) == (expected, expected)
    assert places == ["archive/"]
    assert not [k for k in keys if k.startswith("staging/")]
    return duplicates, losses


def kill_at(point: str, sample: str, scenario, warehouse, settings, landing, stack) -> str:
    case = scenario(sample)
    held = copies_held_for(point, case, stack)
    with held:
        worker = start_dag(case["spec"])
        outcome = kill_when(worker, lambda: KILL_POINTS[point](row_of(warehouse, settings, case["file_id"]), stack))
    recover(case, warehouse, settings)
    check_invariants(case, warehouse, settings, landing)
    return outcome.seen


def drop_connection_inside_copy(sample: str, scenario, warehouse, settings, landing, stack) -> None:
    """pg_terminate_backend on the COPY's session: the task fails, Airflow retries, nothing doubles."""
    case = scenario(sample)
    terminated = False
    with staging_copies_held(stack.postgres.dsn, 4, (case["table"],)):  # the first COPY is a window, not a race
        worker = start_dag(case["spec"])
        while worker.poll() is None:
            pid = copy_in_progress(stack)
            if pid and not terminated:
                admin = psycopg2.connect(stack.postgres.dsn)
                with admin.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                admin.close()
                terminated = True
            time.sleep(0.02)
    assert terminated, "the COPY was never seen running: the fault was not injected"
    recover(case, warehouse, settings)
    check_invariants(case, warehouse, settings, landing)


def s3_outage_after_copy(sample: str, scenario, warehouse, settings, landing, stack) -> None:
    """S3 goes away right after the COPY commits (archive fails), comes back within the retries."""
    import time

    case = scenario(sample)
    worker = start_dag(case["spec"])
    while worker.poll() is None:
        if row_of(warehouse, settings, case["file_id"])["loaded_at"] is not None:
            stack.s3.stop()
            time.sleep(2.5)
            stack.s3.start()
            break
        time.sleep(0.02)
    worker.wait(timeout=300)
    recover(case, warehouse, settings)
    check_invariants(case, warehouse, settings, landing)


# The short form, in `make test`: one of each kind of fault.
def test_worker_killed_after_copy_commit(scenario, warehouse, settings, landing, stack):
    kill_at("after_copy_commit", "weather", scenario, warehouse, settings, landing, stack)


def test_connection_dropped_inside_copy(scenario, warehouse, settings, landing, stack):
    drop_connection_inside_copy("tickit", scenario, warehouse, settings, landing, stack)


def test_s3_outage_after_copy(scenario, warehouse, settings, landing, stack):
    s3_outage_after_copy("zip", scenario, warehouse, settings, landing, stack)


# The full suite, `make chaos`.
# Only the zip sample is staged by the prepare step, so only it has an "after_prepare" boundary.
KILL_CASES = [(p, s) for p in sorted(KILL_POINTS) for s in sorted(SAMPLES) if p != "after_prepare" or s == "zip"]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "sample"), KILL_CASES)
def test_kill_everywhere(point, sample, scenario, warehouse, settings, landing, stack):
    kill_at(point, sample, scenario, warehouse, settings, landing, stack)


@pytest.mark.slow
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_connection_drops_and_outages(sample, scenario, warehouse, settings, landing, stack):
    drop_connection_inside_copy(sample, scenario, warehouse, settings, landing, stack)
    s3_outage_after_copy(sample, scenario, warehouse, settings, landing, stack)


@pytest.mark.slow
def test_duplicate_events_and_racing_runs(scenario, warehouse, settings, landing, stack):
    """The same event twice and two runs of one file type at once: one load."""
    case = scenario("weather")
    head = landing.head_object(Bucket=BUCKET, Key=case["key"])
    obj = S3Object(BUCKET, case["key"], head["ContentLength"], head["ETag"].strip('"'))
    assert register.register_object(warehouse, settings, obj, "seattle_weather", "test") is False
    # The run that finds nothing to claim waits in its sensor: keep that wait short.
    spec = {
        **case["spec"],
        "changes": {**case["spec"]["changes"], "sensor": {"poke_interval_seconds": 5, "timeout_seconds": 20}},
    }
    first, second = start_dag(spec), start_dag(spec)
    first.wait(timeout=300)
    second.wait(timeout=300)
    recover(case, warehouse, settings)
    check_invariants(case, warehouse, settings, landing)


# New versions and forced reloads: the COPY transaction also deletes rows (the earlier version's, or
# the file's own earlier load). A worker killed anywhere in it must leave the old rows or the new
# ones, never both and never neither.
def loaded(case, warehouse, settings) -> dict:
    """Run the case's DAG to its end and check the file is DONE with all its rows."""
    assert run_dag(case["spec"]) == 0
    row = row_of(warehouse, settings, case["file_id"])
    assert (row["status"], row["rows_loaded"]) == ("DONE", case["sample"].rows), row
    return row


def tally(in_table: dict[str, int], expected: dict[str, int], places: list[str]) -> None:
    TALLY["scenarios"] += 1
    TALLY["duplicates"] += sum(max(0, n - expected.get(f, 0)) for f, n in in_table.items())
    TALLY["losses"] += int(any(in_table.get(f, 0) < n for f, n in expected.items()) or len(places) != 1)


def reload_killed(point: str, sample: str, scenario, warehouse, settings, landing, stack) -> str:
    """A DONE file reloaded with ``force``; the worker is killed at ``point``; recovery reloads it."""
    case = scenario(sample)
    first = loaded(case, warehouse, settings)
    # Its COPY is held open (4 s) so a kill "inside the COPY" is a window, not a race with a fast COPY.
    held = copies_held_for(point, case, stack)
    with held:
        worker = start_dag(case["spec"], {"file_id": case["file_id"], "force": True})
        outcome = kill_when(
            worker,
            lambda: (
                row_of(warehouse, settings, case["file_id"])["attempts"] == 2
                and KILL_POINTS[point](row_of(warehouse, settings, case["file_id"]), stack)
            ),
        )
    recover(case, warehouse, settings)
    row = row_of(warehouse, settings, case["file_id"])
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    places = [p for p in ("", "archive/", "quarantine/") if p + case["key"] in keys]
    in_table = rows_per_file(warehouse, case["table"])
    tally(in_table, {case["file_id"]: case["sample"].rows}, places)
    assert row["status"] == "DONE" and row["copy_query_id"] != first["copy_query_id"], row
    assert in_table == {case["file_id"]: case["sample"].rows}
    assert places == ["archive/"]
    return outcome.seen


V2_ROWS = WEATHER_X10.rows


def new_version_killed(point: str, scenario, warehouse, settings, landing, stack) -> str:
    """Weather v1 is loaded; v2 (its rows ten times: 14,610) lands under the same key; the worker loading v2
    is killed at ``point``; recovery loads v2, whose rows replace v1's."""
    case = scenario("weather")
    loaded(case, warehouse, settings)
    landing.put_object(Bucket=BUCKET, Key=case["key"], Body=WEATHER_X10.body())
    head = landing.head_object(Bucket=BUCKET, Key=case["key"])
    modified = head["LastModified"].astimezone(UTC).replace(tzinfo=None)
    v2 = S3Object(BUCKET, case["key"], head["ContentLength"], head["ETag"].strip('"'), None, modified)
    register.register_object(warehouse, settings, v2, "seattle_weather", "test")
    # The new version is a small file: its COPY is held open (4 s) so the kill lands inside it.
    held = copies_held_for(point, case, stack)
    with held:
        worker = start_dag(case["spec"])
        outcome = kill_when(worker, lambda: KILL_POINTS[point](row_of(warehouse, settings, v2.file_id), stack))
    recover({**case, "file_id": v2.file_id}, warehouse, settings)
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    places = [p for p in ("", "archive/", "quarantine/") if p + case["key"] in keys]
    in_table = rows_per_file(warehouse, case["table"])
    tally(in_table, {v2.file_id: V2_ROWS}, places)
    assert row_of(warehouse, settings, v2.file_id)["status"] == "DONE"
    assert row_of(warehouse, settings, case["file_id"])["status"] == "REPLACED"
    assert in_table == {v2.file_id: V2_ROWS}
    assert places == ["archive/"]
    return outcome.seen


def test_forced_reload_killed_inside_its_copy(scenario, warehouse, settings, landing, stack):
    assert reload_killed("inside_copy", "weather_x10", scenario, warehouse, settings, landing, stack) == "COPY running"


RELOAD_POINTS = ("after_claim", "after_copy_commit")


@pytest.mark.slow
@pytest.mark.parametrize("point", RELOAD_POINTS)
@pytest.mark.parametrize("sample", ["weather", "zip"])
def test_forced_reload_killed(point, sample, scenario, warehouse, settings, landing, stack):
    assert reload_killed(point, sample, scenario, warehouse, settings, landing, stack) != "the run finished first"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_claim", "inside_copy", "after_copy_commit"])
def test_new_version_killed(point, scenario, warehouse, settings, landing, stack):
    seen = new_version_killed(point, scenario, warehouse, settings, landing, stack)
    assert seen != "the run finished first"


def teardown_module(module):
    print(
        f"\nfault injection: {TALLY['scenarios']} scenarios, {TALLY['duplicates']} duplicate rows, "
        f"{TALLY['losses']} lost files"
    )
