"""``make bench-latency``: seconds from upload to DONE, and worker slots used while idle, on the real local Airflow.

Starts ``devstack.airflow_local`` (api-server, scheduler, dag-processor, triggerer; LocalExecutor on the
embedded stack) over a copy of ``include/`` that holds every shipped file type twice:

- **new**: as shipped (``sensor.mode: deferrable``, 2 s polls in the triggerer, ``@continuous``);
- **old**: a copy ``<name>_old`` under ``landing/old/`` with the sensor as before this change
  (``SqlSensor`` in ``reschedule`` mode, ``poke_interval`` 60 s, timeout 1 h). It runs ``@continuous``
  too: today's ``@hourly`` schedule would add the wait for the next hour (up to 60 min) on top.

Then, with every DAG unpaused and every sensor waiting:

1. **idle**: no file arrives for ``--idle-seconds`` (300); the running task instances are sampled every
   0.5 s in Airflow's metadata database and integrated per mode: worker-slot-seconds (a running task holds a
   LocalExecutor slot; deferred and up-for-reschedule tasks do not).
2. **latency**: per mode, files land one at a time (upload to moto S3, then registered as the Lambda
   does), the next one a random 2-10 s after the previous reached DONE, round-robin over a few file
   types; upload -> ``finished_at`` of the register's DONE row is the latency. Both modes run at once
   on the same Airflow, so they share its load.

Prints the per-task overhead of the new mode's runs (median gap since the previous task ended, and
median run time, per task), then the last line::

    latency upload->DONE: new p50 X s p95 Y s; old p50 X0 s p95 Y0 s; idle worker-slot-seconds new A old B

A measurement, not a test: nothing is asserted. Takes about 15 minutes (``--idle-seconds`` and
``--files-per-mode`` shorten it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml

from devstack.demo import DATA
from devstack.stack import REPO

# Small real files of four file types: the time is the pipeline's, not the COPY's.
LATENCY_FILES = {
    "tickit_category": ("tickit/category.txt", "category_pipe.txt"),
    "seattle_weather": ("csv/seattle-weather.csv", "weather.csv"),
    "tweets": ("json/sample-tweets-100.jsonl", "tweets.jsonl"),
    "languages": ("zip/table.csv.zip", "table.csv.zip"),
}
READY = ("--ready-timeout", "1200")  # a busy machine can take minutes to parse and start
OLD_SENSOR = {"mode": "reschedule", "poke_interval_seconds": 60, "timeout_seconds": 3600}


def bench_include(target: Path) -> Path:
    """A copy of include/ with each shipped file type in the new mode and an ``_old`` twin."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(REPO / "include", target)
    configs = target / "config" / "file_types"
    for path in sorted(configs.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        schema, table = data["target"]["table"].split(".")
        old = {
            **data,
            "name": f"{data['name']}_old",
            "source": {**data["source"], "prefix": "landing/old/" + data["source"]["prefix"].removeprefix("landing/")},
            "target": {**data["target"], "table": f"{schema}.{table}_old"},
            "sensor": OLD_SENSOR,
        }
        (configs / f"{data['name']}_old.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    return target


class Api:
    """The local Airflow's REST API (simple auth manager token)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        self.token = self._call("POST", "/auth/token", {"username": username, "password": password})["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        for attempt in range(5):  # the API server has one worker and the machine may be busy
            request = urllib.request.Request(self.base + path, method=method)  # noqa: S310 - local http only
            request.add_header("Content-Type", "application/json")
            if getattr(self, "token", None):
                request.add_header("Authorization", f"Bearer {self.token}")
            data = json.dumps(body).encode() if body is not None else None
            try:
                with urllib.request.urlopen(request, data, timeout=120) as response:  # noqa: S310 - local http only
                    return json.loads(response.read())
            except (TimeoutError, ConnectionError, urllib.error.URLError):
                if attempt == 4:
                    raise
                time.sleep(5)
        raise AssertionError("unreachable")

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)


class Metadata:
    """Airflow's metadata database (database ``airflow`` on the stack's PostgreSQL, by its Unix socket)."""

    def __init__(self, airflow_workdir: Path) -> None:
        import psycopg2

        self.conn = psycopg2.connect(host=str(airflow_workdir / "warehouse-db"), user="postgres", dbname="airflow")
        self.conn.autocommit = True

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def dag_ids_in(self, *states: str) -> list[str]:
        return [r[0] for r in self.rows("SELECT dag_id FROM task_instance WHERE state = ANY(%s)", (list(states),))]


def mode_of(dag_id: str) -> str:
    return "old" if dag_id.endswith("_old") else "new"


def start_airflow(workdir: Path, include: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "REDSHIFT_INGEST_INCLUDE_DIR": str(include),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # A shared, overloaded machine: give the one-worker API server and DAG imports time rather than
        # measure Airflow's 5 s execution-API timeout (a task that cannot start is retried 30 s later).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
    }
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "devstack.airflow_local", "--workdir", str(workdir), "--port", str(port), *READY],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_stack(proc: subprocess.Popen, workdir: Path, log_path: Path, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    state_path = workdir / "stack.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"airflow_local exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        if state_path.exists():
            return json.loads(state_path.read_text())
        time.sleep(1)
    raise RuntimeError(f"airflow_local not ready after {timeout:.0f}s")


def wait_until_waiting(db: Metadata, dag_ids: list[str], timeout: float = 900) -> float:
    """Until every DAG's sensor waits (deferred or up for reschedule) and nothing else runs; returns seconds."""
    started = time.monotonic()
    waiting: set[str] = set()
    while time.monotonic() - started < timeout:
        waiting = set(db.dag_ids_in("deferred", "up_for_reschedule"))
        busy = db.dag_ids_in("running", "queued", "scheduled")
        if waiting >= set(dag_ids) and not busy:
            return time.monotonic() - started
        time.sleep(2)
    raise RuntimeError(f"sensors not all waiting after {timeout:.0f}s: {sorted(set(dag_ids) - waiting)}")


def idle_slot_seconds(db: Metadata, seconds: float, interval: float = 0.5) -> dict[str, float]:
    """Worker-slot-seconds per mode: running task instances sampled every ``interval`` s, integrated."""
    used = {"new": 0.0, "old": 0.0}
    deadline = time.monotonic() + seconds
    last = time.monotonic()
    while time.monotonic() < deadline:
        running = db.dag_ids_in("running")
        now = time.monotonic()
        for dag_id in running:
            used[mode_of(dag_id)] += now - last
        last = now
        time.sleep(interval)
    return used


class Lander:
    """Lands files one at a time for one mode and records upload -> DONE."""

    def __init__(self, mode: str, state: dict, count: int, seed: int) -> None:
        self.mode = mode
        self.state = state
        self.count = count
        self.random = random.Random(seed)  # noqa: S311 - landing intervals, not secrets
        self.latencies: list[float] = []
        self.runs: list[tuple[str, str, float]] = []  # dag_id, run_id, upload time (UNIX s)
        self.failures: list[str] = []

    def __call__(self) -> None:
        import boto3
        import psycopg2

        from redshift_ingest.config import default_settings
        from redshift_ingest.register import S3Object, get_file, register_object

        settings = default_settings()
        s3 = boto3.client("s3", **_boto_kwargs(self.state))
        rs = self.state["redshift"]
        conn = psycopg2.connect(
            host=rs["host"], port=rs["port"], user=rs["user"], password=rs["password"], dbname=rs["dbname"]
        )
        types = list(LATENCY_FILES)
        try:
            for n in range(self.count):
                name = types[n % len(types)]
                source, filename = LATENCY_FILES[name]
                prefix = "landing/old/" if self.mode == "old" else "landing/"
                base = yaml.safe_load((REPO / "include/config/file_types" / f"{name}.yaml").read_text())
                key = prefix + base["source"]["prefix"].removeprefix("landing/") + f"bench-{n}-{filename}"
                body = (DATA / source).read_bytes()
                uploaded = time.time()
                s3.put_object(Bucket=settings.landing_bucket, Key=key, Body=body)
                head = s3.head_object(Bucket=settings.landing_bucket, Key=key)
                obj = S3Object(settings.landing_bucket, key, head["ContentLength"], head["ETag"].strip('"'))
                file_type = name if self.mode == "new" else f"{name}_old"
                register_object(conn, settings, obj, file_type, "bench")
                row = self._wait_done(conn, settings, get_file, obj.file_id)
                if row is None or not str(row["status"]).startswith("DONE"):
                    self.failures.append(f"{key}: {row and row['status']} {row and row.get('error_message')}")
                else:
                    done = row["finished_at"].replace(tzinfo=UTC).timestamp()
                    self.latencies.append(done - uploaded)
                    self.runs.append((row["dag_id"], row["run_id"], uploaded))
                    print(f"  {self.mode} {key}: {done - uploaded:.1f} s", flush=True)
                time.sleep(self.random.uniform(2, 10))
        finally:
            conn.close()

    @staticmethod
    def _wait_done(conn, settings, get_file, file_id: str, timeout: float = 600) -> dict | None:
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = get_file(conn, settings, file_id)
            conn.rollback()
            if row and row["status"] not in ("NEW", "IN_PROGRESS"):
                return row
            time.sleep(0.2)
        return row


def _boto_kwargs(state: dict) -> dict:
    env = state["s3_env"]
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def step_overhead(db: Metadata, runs: list[tuple[str, str, float]]) -> list[tuple[str, float, float]]:
    """Per task of the given runs: (task_id, median gap, median run time), seconds. The gap is since the
    previous task ended; for the wait, since the upload (so its "gap + run" is upload -> wait ends)."""
    gaps: dict[str, list[float]] = {}
    durations: dict[str, list[float]] = {}
    order: list[str] = []
    for dag_id, run_id, uploaded in runs:
        rows = db.rows(
            "SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id = %s AND run_id = %s"
            " AND start_date IS NOT NULL AND end_date IS NOT NULL ORDER BY start_date",
            (dag_id, run_id),
        )
        previous_end = None
        for task_id, start, end in rows:
            if task_id not in order:
                order.append(task_id)
            if previous_end is None:  # the wait: it started before the upload; count from the upload
                start = max(start, datetime.fromtimestamp(uploaded, tz=start.tzinfo or UTC))
                gaps.setdefault(task_id, []).append(0.0)
            else:
                gaps.setdefault(task_id, []).append((start - previous_end).total_seconds())
            durations.setdefault(task_id, []).append((end - start).total_seconds())
            previous_end = end
    return [(task, statistics.median(gaps[task]), statistics.median(durations[task])) for task in order]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo" / "bench-latency")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument("--files-per-mode", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    include = bench_include(workdir / "include")
    os.environ["REDSHIFT_INGEST_INCLUDE_DIR"] = str(include)
    log_path = workdir / "airflow_local.log"
    log_path.unlink(missing_ok=True)
    shutil.rmtree(workdir / "airflow", ignore_errors=True)  # no stale stack.json from an earlier run
    # SIGTERM stops the local Airflow too (the finally below), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    proc = start_airflow(workdir / "airflow", include, args.port, log_path)
    try:
        state = wait_for_stack(proc, workdir / "airflow", log_path)
        api = Api(state["api"], state["username"], state["password"])
        import boto3

        from redshift_ingest.config import default_file_types, default_settings

        with contextlib.suppress(Exception):
            boto3.client("s3", **_boto_kwargs(state)).create_bucket(Bucket=default_settings().landing_bucket)
        dag_ids = [ft.dag_id for ft in default_file_types()]
        for dag_id in dag_ids:
            api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
        db = Metadata(workdir / "airflow")
        settle = wait_until_waiting(db, dag_ids)
        print(f"{len(dag_ids)} DAGs unpaused; every sensor waiting after {settle:.0f} s", flush=True)

        print(f"idle for {args.idle_seconds:.0f} s ...", flush=True)
        idle = idle_slot_seconds(db, args.idle_seconds)
        print(f"idle worker-slot-seconds: new {idle['new']:.1f}, old {idle['old']:.1f}", flush=True)

        landers = [Lander(mode, state, args.files_per_mode, args.seed + i) for i, mode in enumerate(("new", "old"))]
        threads = [threading.Thread(target=lander, name=lander.mode) for lander in landers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        new, old = landers
        for lander in landers:
            for failure in lander.failures:
                print(f"  {lander.mode} NOT DONE: {failure}", flush=True)

        print(
            "\nper task of the new mode's runs (median s): gap after the previous task, run time "
            "(the wait's run time counts from the upload)"
        )
        for task, gap, duration in step_overhead(db, new.runs):
            print(f"  {task:<22} gap {gap:5.2f}  run {duration:5.2f}")
        print(
            f"latency upload->DONE: new p50 {statistics.median(new.latencies):.1f} s "
            f"p95 {percentile(new.latencies, 0.95):.1f} s; old p50 {statistics.median(old.latencies):.1f} s "
            f"p95 {percentile(old.latencies, 0.95):.1f} s; "
            f"idle worker-slot-seconds new {idle['new']:.0f} old {idle['old']:.0f}",
            flush=True,
        )
        return 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
