"""The faults production brings that the first injection suite did not (issue 14): Redshift's
serializable isolation error 1023, a query cancelled mid-COPY (statement timeout, WLM abort), S3
refusing the archive or the quarantine, the disk full while staging, the warehouse down while the
Lambda registers, and DDL on a target table two file types share.

Each scenario runs the real DAGs in worker processes against the local stack (the Redshift stand-in
over PostgreSQL, moto's S3 server, the Slack receiver), injects its fault for real where the stack can
produce it, lets production's recovery work (Airflow retries, a replay after the fix, the
reconcile), and checks the invariants of :mod:`faults.test_fault_injection` per file: one terminal
state, its rows exactly once, the object in exactly one place, and every failure alerted (the
Slack receiver got it) with its failure recorded. ``make chaos`` runs them all and prints one tally
line per scenario; ``make test`` runs the cancelled COPY only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg2
import pytest

from faults.harness import REPO, RUNNER, file_type_spec, run_dag, start_dag
from faults.test_fault_injection import DATA, copy_in_progress
from redshift_ingest import register
from redshift_ingest.register import S3Object
from redshift_local import RedshiftLocal
from tests.warehouse_checks import rows_per_file

BUCKET = "example-landing-bucket"
WEATHER = (DATA / "csv/seattle-weather.csv").read_bytes()
WEATHER_ROWS = 1461
_ids = itertools.count()
# scenario -> [runs, duplicate rows, lost files]
TALLY: dict[str, list[int]] = {}


def weather_body(repeat: int = 1, bom: bool = False) -> bytes:
    """The real Seattle weather CSV, its rows ``repeat`` times (a longer COPY), with a UTF-8 BOM
    when ``bom`` (which makes the prepare step stage a gzip copy)."""
    header, _, rows = WEATHER.partition(b"\n")
    return (b"\xef\xbb\xbf" if bom else b"") + header + b"\n" + rows * repeat


def land(landing, warehouse, settings, key: str, body: bytes, file_type: str = "seattle_weather") -> dict:
    """Upload ``body`` and register it (what the Lambda does); returns the file's case dict."""
    landing.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = landing.head_object(Bucket=BUCKET, Key=key)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, file_type, "test")
    return {"key": key, "file_id": obj.file_id, "rows": body.count(b"\n") - 1}


def weather_case(landing, warehouse, settings, *, repeat: int = 1, bom: bool = False, **changes) -> dict:
    """One weather file for a variant of ``seattle_weather`` that loads its own table."""
    n = next(_ids)
    table = f"chaos.h{n}_weather"
    case = land(landing, warehouse, settings, f"landing/weather/hardening-{n}.csv", weather_body(repeat, bom))
    return {**case, "table": table, "spec": file_type_spec("seattle_weather", table, **changes)}


def row_of(warehouse, settings, file_id: str) -> dict:
    row = register.get_file(warehouse, settings, file_id)
    warehouse.rollback()
    return row


def places_of(landing, key: str) -> list[str]:
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    return [p for p in ("", "archive/", "quarantine/") if p + key in keys]


def rows_in(warehouse, table: str, file_id: str | None = None) -> int:
    """Rows of ``file_id`` in ``table`` (all rows when the table has no file_id column)."""
    if file_id is None:
        with warehouse.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            count = cur.fetchone()[0]
        warehouse.rollback()
        return count
    return rows_per_file(warehouse, table).get(file_id, 0)


def check(
    scenario: str,
    files: list[dict],
    warehouse,
    settings,
    landing,
    *,
    status: str = "DONE",
    place: str = "archive/",
    loaded: bool = True,
    tagged: bool = True,
) -> list[dict]:
    """The invariants for ``files`` (each ``key``, ``file_id``, ``rows``, ``table``), tallied under ``scenario``.

    :param status: the terminal state every file must be in.
    :param place: the one prefix its object must be under ('' for landing).
    :param loaded: whether its rows must be in the table (once) or not at all.
    :param tagged: the table has ``ingest_file_id`` (else all its rows are counted).
    :returns: the files' register rows.
    """
    rows, duplicates, losses = [], 0, 0
    for f in files:
        row = row_of(warehouse, settings, f["file_id"])
        in_table = rows_in(warehouse, f["table"], f["file_id"] if tagged else None)
        want = f["rows"] if loaded else 0
        where = places_of(landing, f["key"])
        duplicates += max(0, in_table - want)
        losses += int(in_table < want or len(where) != 1)
        rows.append((row, in_table, where, want))
    runs, dup, lost = TALLY.setdefault(scenario, [0, 0, 0])
    TALLY[scenario] = [runs + 1, dup + duplicates, lost + losses]
    for row, in_table, where, want in rows:
        assert row["status"] == status, row
        assert in_table == want, (row["s3_key"], in_table, want)
        assert where == [place], (row["s3_key"], where)
        if loaded:
            assert row["rows_loaded"] == want, row
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert not [k for k in keys if k.startswith("staging/")]
    return [r for r, *_ in rows]


def alerted(stack, key: str) -> list[str]:
    """The Slack alerts (their fallback text) that name ``key``."""
    return [p["text"] for p in stack.slack.payloads if key in p.get("text", "")]


def replay(case, warehouse, settings) -> None:
    """What a person does once the cause is fixed: trigger the DAG with the file's ``file_id``."""
    assert row_of(warehouse, settings, case["file_id"])["status"] == register.FAILED
    assert run_dag(case["spec"], {"file_id": case["file_id"]}) == 0


# -- 1. Redshift's serializable isolation violation (1023) -------------------------------------------

REDSHIFT_1023 = (
    "1023: Serializable isolation violation on table - 100234, transactions forming the cycle are: 18812, 18813"
)


@contextlib.contextmanager
def raising_once(warehouse, table: str, name: str, when: str = "BEFORE INSERT", scope: str = "STATEMENT", cond=""):
    """A trigger on ``table`` that raises Redshift's 1023 (SQLSTATE XX000) the first time it fires, and
    lets every later statement through; yields a function returning how often it fired.

    The count lives in a sequence, which a rollback does not undo.
    """
    seq = f"chaos.{name}_fired"
    with warehouse.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS chaos")
        cur.execute(f"DROP SEQUENCE IF EXISTS {seq}")
        cur.execute(f"CREATE SEQUENCE {seq}")
        cur.execute(
            f"CREATE OR REPLACE FUNCTION chaos.{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF nextval('{seq}') = 1 THEN RAISE EXCEPTION USING MESSAGE = '{REDSHIFT_1023}', ERRCODE = 'XX000'; "
            f"END IF; RETURN NULL; END $$"
            if scope == "STATEMENT"
            else f"CREATE OR REPLACE FUNCTION chaos.{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF nextval('{seq}') = 1 THEN RAISE EXCEPTION USING MESSAGE = '{REDSHIFT_1023}', ERRCODE = 'XX000'; "
            f"END IF; RETURN NEW; END $$"
        )
        cur.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        cur.execute(f"CREATE TRIGGER {name} {when} ON {table} FOR EACH {scope} {cond} EXECUTE FUNCTION chaos.{name}()")
    warehouse.commit()

    def fired() -> int:
        with warehouse.cursor() as cur:
            cur.execute(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}")
            value = cur.fetchone()[0]
        warehouse.rollback()
        return value

    try:
        yield fired
    finally:
        with warehouse.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        warehouse.commit()


@pytest.mark.slow
def test_1023_inside_the_copy_is_retried_then_done(landing, warehouse, settings, stack):
    """The COPY statement itself fails with 1023 (a trigger on the target raises it as Redshift
    does: XX000, "1023: Serializable isolation violation ..."). The file type loads without a
    file_id column, so the COPY writes the target directly (a manifest COPY). Airflow retries the
    step; the file ends DONE under its first claim, never quarantined."""
    case = weather_case(landing, warehouse, settings)
    target = {**case["spec"]["changes"]["target"], "file_id_column": None, "on_new_version": "keep"}
    case["spec"] = {**case["spec"], "changes": {**case["spec"]["changes"], "target": target}}
    with warehouse.cursor() as cur:  # the shipped DDL less its ingest_file_id column
        cur.execute("CREATE SCHEMA IF NOT EXISTS chaos")
        cur.execute(
            f"CREATE TABLE {case['table']} (date date, precipitation decimal(6, 1), temp_max decimal(5, 1), "
            "temp_min decimal(5, 1), wind decimal(5, 1), weather varchar(16))"
        )
    warehouse.commit()
    with raising_once(warehouse, case["table"], "copy_1023") as fired:
        assert run_dag(case["spec"]) == 0
        assert fired() == 2  # the first COPY failed with 1023, the retry's went through
    [row] = check("1023 inside the COPY", [case], warehouse, settings, landing, tagged=False)
    assert (row["attempts"], row["quarantine_key"]) == (1, None), row


@pytest.fixture(scope="module")
def serializable_warehouse(postgres, s3_server):
    """A second stand-in on the same PostgreSQL whose sessions run SERIALIZABLE, as Redshift's do: a
    conflict between concurrent transactions fails one of them with a real 1023 (see
    ``redshift_local.compat``)."""
    with RedshiftLocal(postgres.dsn, isolation="serializable") as server:
        yield server


def through(server: RedshiftLocal, monkeypatch) -> None:
    """Point the workers' ``redshift_default`` connection at ``server``."""
    conn = json.loads(os.environ["AIRFLOW_CONN_REDSHIFT_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT_DEFAULT", json.dumps({**conn, "port": server.port}))


@pytest.mark.slow
def test_1023_on_the_register_update_in_the_copy_transaction(
    landing, warehouse, settings, stack, serializable_warehouse, monkeypatch
):
    """A real 1023: the worker's sessions are serializable (as on Redshift). While its COPY runs,
    another register writer (what the lease keeper or a second run does) updates the file's row and
    commits; the COPY transaction's own update of that row (``record_loads``) then conflicts and
    Redshift's error 1023 rolls the whole load back. Airflow retries; the file loads once."""
    case = weather_case(landing, warehouse, settings, repeat=30)  # a COPY long enough to be seen
    through(serializable_warehouse, monkeypatch)
    worker = start_dag(case["spec"])
    touched = False
    deadline = time.monotonic() + 300  # a worker starts slowly on a busy machine
    while worker.poll() is None and time.monotonic() < deadline:
        if not touched and copy_in_progress(stack):
            with warehouse.cursor() as cur:
                cur.execute(
                    f"UPDATE {settings.register_table.quoted} SET lease_expires_at = lease_expires_at "
                    "WHERE file_id = %s",
                    (case["file_id"],),
                )
            warehouse.commit()
            touched = True
        time.sleep(0.02)
    assert worker.wait(timeout=300) == 0
    assert touched, "the COPY was never seen running"
    [row] = check("1023 on the register update (COPY transaction)", [case], warehouse, settings, landing)
    assert (row["attempts"], row["quarantine_key"]) == (1, None), row


@pytest.mark.slow
def test_1023_when_marking_files_done_is_retried(landing, warehouse, settings, stack):
    """``mark_done_files`` (the finish step's register update) fails with 1023 once (a trigger on
    the register raises it for this file's IN_PROGRESS -> DONE update): the step is retried, finds
    the object already archived, and marks the file DONE."""
    case = weather_case(landing, warehouse, settings)
    register_table = settings.register_table.quoted
    only_this = f"WHEN (NEW.status LIKE 'DONE%' AND OLD.status <> NEW.status AND NEW.file_id = '{case['file_id']}')"
    with raising_once(warehouse, register_table, "done_1023", "BEFORE UPDATE", "ROW", only_this) as fired:
        assert run_dag(case["spec"]) == 0
        assert fired() >= 2  # its first update to DONE failed, the retry's went through
    [row] = check("1023 on the register update (mark done)", [case], warehouse, settings, landing)
    assert (row["attempts"], row["quarantine_key"]) == (1, None), row


# -- 3. A query cancelled mid-COPY: statement timeout, WLM abort (SQLSTATE 57014) ---------------------


def test_copy_cancelled_mid_copy_is_retried_then_done(landing, warehouse, settings, stack):
    """``pg_cancel_backend`` on the COPY's session from a side connection: what a statement
    timeout or a WLM abort action does to a running query (SQLSTATE 57014, "canceling statement").
    Airflow retries the step; the file is loaded exactly once, under its first claim."""
    case = weather_case(landing, warehouse, settings, repeat=10)
    worker = start_dag(case["spec"])
    cancelled = False
    deadline = time.monotonic() + 300  # a worker starts slowly on a busy machine
    while worker.poll() is None and time.monotonic() < deadline:
        pid = None if cancelled else copy_in_progress(stack)
        if pid:
            admin = psycopg2.connect(stack.postgres.dsn)
            with admin.cursor() as cur:
                cur.execute("SELECT pg_cancel_backend(%s)", (pid,))
                cancelled = cur.fetchone()[0]
            admin.close()
        time.sleep(0.01)
    assert worker.wait(timeout=300) == 0
    assert cancelled, "the COPY was never seen running"
    [row] = check("query cancelled mid-COPY (57014)", [case], warehouse, settings, landing)
    assert (row["attempts"], row["quarantine_key"]) == (1, None), row


# -- 2. S3 refuses the archive or the quarantine -----------------------------------------------------


@contextlib.contextmanager
def refused(landing, prefix: str):
    """A bucket policy denying ``s3:PutObject`` under ``prefix`` (moto's server enforces bucket
    policies: a copy or put there answers 403), removed afterwards."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "chaos",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/{prefix}*",
            }
        ],
    }
    landing.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    try:
        yield
    finally:
        landing.delete_bucket_policy(Bucket=BUCKET)


@pytest.mark.slow
def test_archive_refused_keeps_the_loaded_file_in_landing_until_replayed(landing, warehouse, settings, stack):
    """The COPY commits, then S3 refuses the archive (AccessDenied on ``archive/``): the file is
    FAILED with its rows loaded once, its object still in landing, a message naming the archive key
    and what to fix, and an alert. Once the policy is fixed, a replay archives it without loading
    its rows again: DONE."""
    case = weather_case(landing, warehouse, settings)
    stack.slack.payloads.clear()
    with refused(landing, "archive/"):
        run_dag(case["spec"])  # the run fails (dag.test's exit status does not say so)
    row = row_of(warehouse, settings, case["file_id"])
    assert (row["status"], row["quarantine_key"], row["archive_key"]) == ("FAILED", None, None), row
    assert row["loaded_at"] is not None and rows_in(warehouse, case["table"], case["file_id"]) == case["rows"]
    assert places_of(landing, case["key"]) == [""]
    assert "archive/" + case["key"] in row["error_message"] and "AccessDenied" in row["error_message"], row
    assert row["error_message"].startswith("load_files failed in its archive step: LoadConfigError"), row
    assert alerted(stack, case["key"])
    replay(case, warehouse, settings)
    check("S3 refuses the archive", [case], warehouse, settings, landing)


@pytest.mark.slow
def test_quarantine_refused_keeps_the_bad_file_in_landing(landing, warehouse, settings, stack):
    """A file with a bad date (MAXERROR 0) fails its COPY; S3 refuses the quarantine (AccessDenied on
    ``quarantine/``): the file is FAILED, nothing loaded, its object still in landing, the message
    says the data error and that the quarantine was refused, and an alert goes out. Once the policy
    is fixed, a replay fails it again on its data, and it is quarantined."""
    n = next(_ids)
    body = weather_body().replace(b"2014-", b"20X4-", 1)
    case = land(landing, warehouse, settings, f"landing/weather/hardening-{n}.csv", body)
    case["table"] = f"chaos.h{n}_weather"
    case["spec"] = file_type_spec("seattle_weather", case["table"])
    stack.slack.payloads.clear()
    with refused(landing, "quarantine/"):
        run_dag(case["spec"])
    row = row_of(warehouse, settings, case["file_id"])
    assert (row["status"], row["quarantine_key"], row["loaded_at"]) == ("FAILED", None, None), row
    assert places_of(landing, case["key"]) == [""]
    assert "20X4" in row["error_message"] and "could not quarantine it (AccessDenied)" in row["error_message"], row
    assert alerted(stack, case["key"])
    replay(case, warehouse, settings)
    check(
        "S3 refuses the quarantine",
        [case],
        warehouse,
        settings,
        landing,
        status="FAILED",
        place="quarantine/",
        loaded=False,
    )


# -- 4. The disk full while staging a prepared file --------------------------------------------------


def start_dag_with_full_disk(spec: dict, size: str = "64k") -> subprocess.Popen:
    """:func:`faults.harness.start_dag` with the worker's temp directory on a tmpfs of ``size``: a
    real "No space left on device" (ENOSPC) once the staged gzip copy outgrows it. The tmpfs is
    mounted in the worker's own user and mount namespace (``unshare -rm``), so no root is needed
    where unprivileged user namespaces are allowed; nothing outside the worker sees it."""
    mount = tempfile.mkdtemp(prefix="chaos-tmpfs-")
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && TMPDIR="$2" exec "$3" -c "$4" "$5"'
    log_path = os.environ.get("CHAOS_WORKER_LOG")
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", script, "sh", size, mount, sys.executable, RUNNER, json.dumps(spec)],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = tempfile.mkdtemp(prefix="chaos-tmpfs-probe-")
    done = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", probe], check=False)
    os.rmdir(probe)
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="no user namespaces here: cannot mount a small tmpfs")
def test_disk_full_while_staging_fails_the_file_in_landing_then_replay_loads_it(landing, warehouse, settings, stack):
    """The weather CSV (rows x10) with a UTF-8 BOM: the prepare step stages a gzip copy (108 KB)
    through a temp file, on a worker whose temp directory is a 64 KB tmpfs. The write fails with
    ENOSPC; Airflow retries; the disk stays full, so the file ends FAILED in landing (not
    quarantined: the file is fine) with a message naming the full temp directory, nothing staged is
    left in S3, and an alert goes out. With room again, a replay loads it once."""
    case = weather_case(landing, warehouse, settings, repeat=10, bom=True)
    stack.slack.payloads.clear()
    assert start_dag_with_full_disk(case["spec"]).wait(timeout=300) == 0
    row = row_of(warehouse, settings, case["file_id"])
    assert (row["status"], row["quarantine_key"], row["loaded_at"]) == ("FAILED", None, None), row
    assert "No space left on device" in row["error_message"] and "TMPDIR" in row["error_message"], row
    assert places_of(landing, case["key"]) == [""]
    assert alerted(stack, case["key"])
    replay(case, warehouse, settings)
    check("disk full while staging", [case], warehouse, settings, landing)


# -- 5. The warehouse down while the Lambda registers ---------------------------------------------------


def sqs_batch(*bodies: dict) -> dict:
    """An SQS event as Lambda receives it (AWS "Using Lambda with Amazon SQS")."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:landing-events",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


@pytest.mark.slow
def test_warehouse_down_during_registration(landing, settings, stack, lambda_env):
    """The warehouse (the stand-in) stops listening while two files land: the SQS-fed invocation
    reports its message failed (SQS delivers it again), the EventBridge invocation raises on each of
    Lambda's three attempts (then the event is dead-lettered). The warehouse comes back: SQS's next
    delivery registers the first file, the reconcile finds the second; one run loads both, once."""
    from devstack.demo import eventbridge_event, load_lambda_handler, s3_notification
    from redshift_ingest.config import default_file_types
    from redshift_ingest.hooks.warehouse import WarehouseHook
    from redshift_ingest.registration import reconcile

    n = next(_ids)
    table = f"chaos.h{n}_weather"
    files, landed = [], []
    for i, body in enumerate((weather_body(), weather_body(2))):
        key = f"landing/weather/hardening-{n}-down-{i}.csv"
        landing.put_object(Bucket=BUCKET, Key=key, Body=body)
        head = landing.head_object(Bucket=BUCKET, Key=key)
        obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
        files.append({"key": key, "file_id": obj.file_id, "rows": body.count(b"\n") - 1, "table": table})
        when = head["LastModified"].isoformat().replace("+00:00", "Z")
        landed.append({"Key": key, "Size": head["ContentLength"], "ETag": obj.etag, "LastModified": when})
    queued = sqs_batch(s3_notification(BUCKET, landed[0]))
    direct = eventbridge_event(BUCKET, landed[1])

    stack.redshift.stop()  # connections refused from here on
    try:
        handler = load_lambda_handler()  # a cold execution environment
        assert handler.handler(queued, None) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
        for _attempt in range(3):  # the asynchronous invocation and Lambda's two retries
            with pytest.raises(psycopg2.OperationalError):
                handler.handler(direct, None)
    finally:
        stack.redshift.start()  # the same port: the warehouse is back
    assert handler.handler(queued, None) == {"batchItemFailures": []}  # SQS delivers the message again
    conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    try:
        found = reconcile(conn, settings, default_file_types(), landing)
        assert found["registered"] == [f"s3://{BUCKET}/{files[1]['key']}"]  # the first is not registered twice
        assert run_dag(file_type_spec("seattle_weather", table)) == 0
        check("warehouse down during registration", files, conn, settings, landing)
    finally:
        conn.close()


# -- 6. DDL on a target table two file types share ------------------------------------------------------


def mirror_spec(table: str) -> dict:
    """A second file type loading weather files into ``table``: the shipped ``penguins`` file type
    (its DAG, ``ingest_penguins``, is in the DAG folder, as ``dag.test()`` needs) configured as
    ``seattle_weather`` is."""
    from redshift_ingest.config import default_file_types

    weather = next(ft for ft in default_file_types() if ft.name == "seattle_weather").model_dump(mode="json")
    spec = file_type_spec("penguins", table)
    changes = {k: v for k, v in weather.items() if k not in ("name", "target")}
    return {**spec, "changes": {**changes, **spec["changes"], "target": {**weather["target"], "table": table}}}


@pytest.mark.slow
def test_concurrent_ddl_on_a_shared_target_table(landing, warehouse, settings, stack):
    """Two file types load into one table that does not exist yet: both runs create it (``CREATE
    TABLE IF NOT EXISTS``, each at its COPY step), and while the first COPY runs a side session
    widens a column (``ALTER TABLE ... ALTER COLUMN ... TYPE VARCHAR(32)``, valid on Redshift),
    which waits for the load's lock and makes the other run's load wait behind it. Both files load
    exactly once (a run whose DDL lost the race is retried)."""
    import threading

    n = next(_ids)
    table = f"chaos.h{n}_shared"
    first = land(landing, warehouse, settings, f"landing/weather/hardening-{n}-a.csv", weather_body(5))
    second = land(landing, warehouse, settings, f"landing/weather/hardening-{n}-b.csv", weather_body(3), "penguins")
    files = [{**first, "table": table}, {**second, "table": table}]
    specs = [file_type_spec("seattle_weather", table), mirror_spec(table)]
    workers = [start_dag(spec) for spec in specs]
    altered: list[str] = []

    def alter() -> None:
        from redshift_ingest.hooks.warehouse import WarehouseHook

        side = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
        try:
            with side.cursor() as cur:
                cur.execute(f"ALTER TABLE {table} ALTER COLUMN weather TYPE VARCHAR(32)")
            side.commit()
            altered.append("done")
        finally:
            side.close()

    side = None
    deadline = time.monotonic() + 300  # a worker starts slowly on a busy machine
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        if side is None and copy_in_progress(stack):
            side = threading.Thread(target=alter)
            side.start()
        time.sleep(0.02)
    for worker in workers:
        assert worker.wait(timeout=300) == 0
    assert side is not None, "no COPY was seen running"
    side.join(timeout=60)
    assert altered == ["done"]
    with warehouse.cursor() as cur:
        schema, name = table.split(".")
        cur.execute(
            "SELECT character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND column_name = 'weather'",
            (schema, name),
        )
        assert cur.fetchone() == (32,)
    warehouse.rollback()
    rows = check("concurrent DDL on a shared target table", files, warehouse, settings, landing)
    assert [r["file_type"] for r in rows] == ["seattle_weather", "penguins"]


def teardown_module(module):
    for scenario, (runs, duplicates, losses) in TALLY.items():
        print(f"\nhardening faults: {scenario}: {runs} runs, {duplicates} duplicate rows, {losses} lost files", end="")
    if TALLY:
        print()
