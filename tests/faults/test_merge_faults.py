"""Exactly once for ``load_mode: merge``: the worker is killed inside the merge's transaction.

A merge file type's second file updates keys the first loaded and adds others; its run is killed
(SIGKILL, as a dead MWAA worker) while its COPY into the staging table runs, while the DELETE of the
matched target rows runs, and while the INSERT of the merged rows runs. Recovery is production's: the
lease expires, the reaper releases the claim, the next run loads the file. Then the table must hold
exactly one row per merge key with exactly the expected values (each key's row from the newest file
holding it, tagged with that file's id), both files DONE with their row counts, each object archived
once. The tally of duplicate rows and lost files is printed at the end of the module.

The files are the real TICKIT events (data/tickit/event.txt, keyed by ``eventid``): file 1 is its
first 5,000 rows, file 2 its last 5,798 rows, the 2,000 rows both hold renamed the way a producer's
correction would rename them. The DELETE and INSERT of a few thousand rows last milliseconds; to
kill the worker inside them reliably, the test makes them slow with a PostgreSQL statement trigger on
the stand-in's own database (``pg_sleep``), dropped once the worker is dead: the merge SQL, the
transaction and the kill are the real ones.
"""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC

import psycopg2
import pytest

from faults.harness import file_type_spec, kill_when, run_dag, sleep_function, staging_copies_held, start_dag
from faults.test_batch_faults import recover
from faults.test_fault_injection import DATA, copy_in_progress
from redshift_ingest import register
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"
TALLY = {"scenarios": 0, "duplicates": 0, "losses": 0}
_ids = itertools.count()
FIRST, OVERLAP_FROM = 5000, 3000  # file 1: rows [0, 5000); file 2: rows [3000, end), [3000, 5000) corrected
SLEEP_SECONDS = 4
# A worker starts Airflow first (about a minute on a busy 2-core machine) before it reaches the merge.
BOUNDARY_TIMEOUT = 600


def event_lines() -> list[str]:
    return (DATA / "tickit/event.txt").read_text(encoding="utf-8").splitlines()


def corrected(line: str) -> str:
    fields = line.split("|")
    fields[4] = f"{fields[4]} (rescheduled)"
    return "|".join(fields)


def record(line: str, file_id: str) -> tuple:
    """A pipe-delimited event line as the table returns it, with its file's id."""
    eventid, venueid, catid, dateid, name, start = line.split("|")
    return (int(eventid), int(venueid), int(catid), int(dateid), name, start, file_id)


@pytest.fixture
def merge_case(landing, warehouse, settings):
    """A merge file type over its own table, file 1 loaded (DONE), file 2 landed and registered."""
    n = next(_ids)
    table = f"chaos.merge{n}_event"
    with warehouse.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS chaos")
        cur.execute(
            f"CREATE TABLE {table} (eventid integer not null, venueid smallint not null, catid smallint not null, "
            "dateid smallint not null, eventname varchar(200), starttime timestamp, ingest_file_id varchar(64))"
        )
    warehouse.commit()
    spec = file_type_spec("tickit_event", table, load_mode="merge", merge={"keys": ["eventid"]}, selection="all")
    spec["changes"]["target"]["file_id_column"] = "ingest_file_id"
    lines = event_lines()
    bodies = [lines[:FIRST], [corrected(x) for x in lines[OVERLAP_FROM:FIRST]] + lines[FIRST:]]
    files = []
    for i, body in enumerate(bodies):
        key = f"landing/tickit/event/merge{n}-{i + 1}.txt"
        landing.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(body) + "\n").encode())
        head = landing.head_object(Bucket=BUCKET, Key=key)
        modified = head["LastModified"].astimezone(UTC).replace(tzinfo=None)
        obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'), None, modified)
        register.register_object(warehouse, settings, obj, "tickit_event", "test")
        files.append({"key": key, "file_id": obj.file_id, "lines": body})
        if i == 0:
            assert run_dag(spec) == 0
            assert row_of(warehouse, settings, obj.file_id)["status"] == "DONE"
    first, second = files
    expected = [record(x, first["file_id"]) for x in lines[:OVERLAP_FROM]]
    expected += [record(x, second["file_id"]) for x in second["lines"]]
    return {"table": table, "spec": spec, "files": files, "expected": expected}


def row_of(conn, settings, file_id: str) -> dict:
    row = register.get_file(conn, settings, file_id)
    conn.rollback()
    return row


def pg(stack):
    """A connection to the stand-in's own PostgreSQL (under the Redshift SQL layer), autocommit."""
    conn = psycopg2.connect(stack.postgres.dsn)
    conn.autocommit = True
    return conn


def slow_statement(stack, table: str, event: str) -> None:
    """Make every ``event`` (DELETE / INSERT) statement on ``table`` last ``SLEEP_SECONDS`` longer."""
    conn = pg(stack)
    with conn.cursor() as cur:
        cur.execute(sleep_function(SLEEP_SECONDS))
        cur.execute(
            f"CREATE TRIGGER slow_{event.lower()} AFTER {event} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION chaos.slow_statement()"
        )
    conn.close()


def drop_slow_statement(stack, table: str, event: str) -> None:
    conn = pg(stack)
    with conn.cursor() as cur:
        cur.execute(f"DROP TRIGGER IF EXISTS slow_{event.lower()} ON {table}")
    conn.close()


def statement_sleeping(stack, verb: str) -> str | None:
    """``"<verb> running"`` while a backend runs a ``verb`` statement held in the trigger's sleep."""
    conn = pg(stack)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND wait_event = 'PgSleep' "
                "AND xact_start IS NOT NULL AND query ILIKE %s",
                (f"%{verb}%",),
            )
            return f"{verb} running" if cur.fetchone() else None
    finally:
        conn.close()


def check(case, warehouse, settings, landing) -> None:
    """One row per merge key, exactly the expected rows; both files DONE, each archived once."""
    with warehouse.cursor() as cur:
        cur.execute(
            "SELECT eventid, venueid, catid, dateid, eventname, starttime, ingest_file_id "
            f"FROM {case['table']} ORDER BY eventid, ingest_file_id"
        )
        found = [(*r[:5], str(r[5]), r[6]) for r in cur.fetchall()]
    warehouse.rollback()
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    expected = sorted(case["expected"])
    duplicates = len(found) - len({r[0] for r in found})
    missing = set(expected) - set(found)
    losses = 0
    for f in case["files"]:
        row = row_of(warehouse, settings, f["file_id"])
        places = [p for p in ("", "archive/", "quarantine/") if p + f["key"] in keys]
        lost_rows = any(r[6] == f["file_id"] for r in missing)
        losses += int(row["status"] != "DONE" or places != ["archive/"] or lost_rows)
        assert (row["status"], row["rows_loaded"], row["rows_rejected"]) == ("DONE", len(f["lines"]), 0), row
        assert places == ["archive/"]
    TALLY["scenarios"] += 1
    TALLY["duplicates"] += duplicates
    TALLY["losses"] += losses
    assert duplicates == 0
    assert found == expected
    assert not [k for k in keys if k.startswith("staging/")]


def killed_inside_merge(case, stack, warehouse, settings, landing, condition, slow: str | None = None) -> str:
    """Run file 2's merge and SIGKILL its worker when ``condition`` holds; ``slow``: ``DELETE`` or
    ``INSERT`` (on the target) or ``COPY`` (into the staging table) waits ``SLEEP_SECONDS`` first."""
    if slow in ("DELETE", "INSERT"):
        slow_statement(stack, case["table"], slow)
    held = staging_copies_held(stack.postgres.dsn, SLEEP_SECONDS) if slow == "COPY" else contextlib.nullcontext()
    try:
        with held:
            worker = start_dag(case["spec"])
            outcome = kill_when(worker, condition, timeout=BOUNDARY_TIMEOUT)
    finally:
        if slow in ("DELETE", "INSERT"):
            drop_slow_statement(stack, case["table"], slow)
    assert outcome.killed, outcome.seen
    second = row_of(warehouse, settings, case["files"][1]["file_id"])
    assert second["status"] == "IN_PROGRESS" and second["loaded_at"] is None, second  # killed before the commit
    recover(case, warehouse, settings)
    check(case, warehouse, settings, landing)
    return outcome.seen


@pytest.mark.slow
def test_merge_killed_inside_its_staging_copy(merge_case, stack, warehouse, settings, landing):
    seen = killed_inside_merge(
        merge_case,
        stack,
        warehouse,
        settings,
        landing,
        lambda: copy_in_progress(stack) and "COPY running",
        slow="COPY",
    )
    assert seen == "COPY running"


@pytest.mark.slow
@pytest.mark.parametrize("verb", ["DELETE", "INSERT"])
def test_merge_killed_inside_its_delete_and_insert(merge_case, stack, warehouse, settings, landing, verb):
    seen = killed_inside_merge(
        merge_case, stack, warehouse, settings, landing, lambda: statement_sleeping(stack, verb), slow=verb
    )
    assert seen == f"{verb} running"


def teardown_module(module):
    print(
        f"\nmerge fault injection: {TALLY['scenarios']} scenarios, {TALLY['duplicates']} duplicate rows, "
        f"{TALLY['losses']} lost files"
    )
