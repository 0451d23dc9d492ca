"""``make bench-backlog``: drain a backlog of small real files under the real local Airflow scheduler,
batched against one file per run, and check both give the same per-file counts.

What it does:

1. Writes three file types into a private copy of ``include/`` (``REDSHIFT_INGEST_INCLUDE_DIR``), each
   loading its own table on ``@continuous``: two are the shipped ``seattle_weather`` type (rows tagged
   with their ``file_id``: one COPY per file in one transaction), one with the default ``batch``
   (1,000 files), one with ``batch.max_files: 1``; the third has no ``file_id`` column, so a batch
   is one manifest COPY (measured too, for the README's choice of COPY strategy).
2. Starts ``make airflow``'s stack (``python -m devstack.airflow_local``: api-server, scheduler,
   dag-processor, triggerer, LocalExecutor) on it.
3. Splits the real ``data/csv/seattle-weather.csv`` into N small CSV files (each with the header),
   lands them under the batched type's prefix and the first ``--sample`` of them under the one-file
   type's prefix, and registers them through the Lambda handler with S3 notification events.
4. Unpauses the batched DAG and times landing -> every file DONE; pauses it; then the same for the
   one-file DAG over its sample.
5. Compares the register's ``rows_loaded`` / ``rows_rejected`` / ``first_error`` and the rows in the
   tables per file for the files both loaded.

The last line: ``backlog N files: batched F1 files/min in C1 COPY transactions; one per run F2
files/min; ratio R; per-file counts identical: yes|no``. C1 counts the transactions that committed
a COPY (the distinct runs whose files were loaded), read from the register.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from devstack.stack import REPO

WEATHER = REPO / "data" / "csv" / "seattle-weather.csv"
BATCHED, SINGLE, MANIFEST = "backlog_batched", "backlog_single", "backlog_manifest"
UNTAGGED_DDL = """CREATE TABLE IF NOT EXISTS {{ target }} (
    date date, precipitation decimal(6, 1), temp_max decimal(5, 1), temp_min decimal(5, 1),
    wind decimal(5, 1), weather varchar(16)
);
"""


def split_weather(n: int) -> list[bytes]:
    """The real weather file as ``n`` small CSV files (header each), rows in order."""
    header, *rows = WEATHER.read_bytes().splitlines(keepends=True)
    bounds = [round(i * len(rows) / n) for i in range(n + 1)]
    return [header + b"".join(rows[bounds[i] : bounds[i + 1]]) for i in range(n)]


def private_include(workdir: Path) -> Path:
    """A copy of include/ whose file types are the two benchmark types only."""
    include = workdir / "include"
    shutil.copytree(REPO / "include", include)
    types = include / "config" / "file_types"
    base = yaml.safe_load((types / "seattle_weather.yaml").read_text())
    for path in types.glob("*.yaml"):
        path.unlink()
    (include / "sql" / "ddl" / "bench_weather_untagged.sql").write_text(UNTAGGED_DDL)
    for name, batch in ((BATCHED, {"max_files": 1000}), (SINGLE, {"max_files": 1}), (MANIFEST, {"max_files": 1000})):
        config = {
            **base,
            "name": name,
            "description": f"make bench-backlog: weather slices, batch.max_files {batch['max_files']}",
            "source": {"prefix": f"landing/backlog/{name}/", "pattern": "*.csv"},
            "target": {**base["target"], "table": f"bench.{name}"},
            "batch": batch,
            "schedule": "@continuous",
            "sensor": {"poke_interval_seconds": 5, "timeout_seconds": 3600},
            "alerts": {"slack": False, "email": []},
        }
        if name == MANIFEST:  # rows not tagged with their file: the whole batch through one manifest COPY
            config["target"] = {"table": f"bench.{name}", "ddl": "ddl/bench_weather_untagged.sql"}
        (types / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return include


class Api:
    """The few Airflow REST calls the benchmark needs (token from the simple auth manager)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        request = urllib.request.Request(  # noqa: S310 - our own local API server
            f"{base}/auth/token",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            self.token = json.load(response)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 - our own local API server
            f"{self.base}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.load(response)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"/dags/{dag_id}", {"is_paused": paused})


def land(state: dict, bodies: list[bytes], file_type: str) -> None:
    """Upload ``bodies`` and register them through the Lambda handler, 100 records per event."""
    import boto3

    os.environ.update(state["s3_env"])
    os.environ.update(state["registration_env"])
    from devstack.demo import load_lambda_handler

    handler = load_lambda_handler()
    s3 = boto3.client("s3")
    bucket = state["landing_bucket"]
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    secrets = boto3.client("secretsmanager")  # the Lambda reads the warehouse password from it
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(
            Name=state["registration_env"]["REDSHIFT_SECRET_ARN"], SecretString=json.dumps({"password": "local-only"})
        )
    records = []
    for i, body in enumerate(bodies):
        key = f"landing/backlog/{file_type}/part-{i:05}.csv"
        put = s3.put_object(Bucket=bucket, Key=key, Body=body)
        records.append(
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "awsRegion": "us-east-1",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": key, "size": len(body), "eTag": put["ETag"].strip('"')},
                },
            }
        )
    for start in range(0, len(records), 100):
        handler.handler({"Records": records[start : start + 100]}, None)


def warehouse(state: dict):
    import psycopg2

    return psycopg2.connect(**state["redshift"])


def statuses(conn, file_type: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM public.mng WHERE file_type = %s GROUP BY 1", (file_type,))
        out = dict(cur.fetchall())
    conn.rollback()
    return out


def drain(api: Api, conn, file_type: str, expected: int, timeout: float) -> float:
    """Unpause ``ingest_<file_type>`` and wait until ``expected`` files are terminal; seconds taken."""
    started = time.monotonic()
    api.set_paused(f"ingest_{file_type}", False)
    try:
        while time.monotonic() - started < timeout:
            counts = statuses(conn, file_type)
            terminal = sum(n for s, n in counts.items() if s not in ("NEW", "IN_PROGRESS"))
            if terminal >= expected:
                return time.monotonic() - started
            time.sleep(1)
        raise TimeoutError(f"{file_type}: not drained after {timeout:.0f}s: {statuses(conn, file_type)}")
    finally:
        api.set_paused(f"ingest_{file_type}", True)


def per_file(conn, file_type: str) -> dict[str, tuple]:
    """part name -> (status, rows_loaded, rows_rejected, first_error, rows in the table)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT m.s3_key, m.status, m.rows_loaded, coalesce(m.rows_rejected, 0), m.first_error, "
            f"(SELECT count(*) FROM bench.{file_type} t WHERE t.ingest_file_id = m.file_id) "
            "FROM public.mng m WHERE m.file_type = %s",
            (file_type,),
        )
        out = {row[0].rsplit("/", 1)[-1]: row[1:] for row in cur.fetchall()}
    conn.rollback()
    return out


def transactions(conn, file_type: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(DISTINCT run_id) FROM public.mng WHERE file_type = %s AND loaded_at IS NOT NULL", (file_type,)
        )
        n = cur.fetchone()[0]
    conn.rollback()
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_backlog", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="backlog size N (default 1000)")
    parser.add_argument("--sample", type=int, default=50, help="files the one-file mode loads (default 50)")
    parser.add_argument("--port", type=int, default=0, help="API server port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per mode at most")
    args = parser.parse_args(argv)

    if not args.port:
        from devstack.services import free_port

        args.port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-backlog-"))
    include = private_include(workdir)
    env = {**os.environ, "REDSHIFT_INGEST_INCLUDE_DIR": str(include)}
    stack_dir = workdir / "airflow-local"
    command = [
        sys.executable,
        "-m",
        "devstack.airflow_local",
        "--workdir",
        str(stack_dir),
        "--port",
        str(args.port),
        "--ready-timeout",
        "900",
    ]
    airflow_log = Path(tempfile.gettempdir()) / "bench-backlog-airflow.log"
    with airflow_log.open("wb") as output:
        airflow = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 1200
        while not (stack_dir / "stack.json").exists():
            if airflow.poll() is not None or time.monotonic() > deadline:
                tail = airflow_log.read_text(errors="replace")[-3000:]
                print(f"the local Airflow did not start ({airflow_log}):\n{tail}", file=sys.stderr)
                return 1
            time.sleep(1)
        state = json.loads((stack_dir / "stack.json").read_text())
        os.environ["REDSHIFT_INGEST_INCLUDE_DIR"] = str(include)
        bodies = split_weather(args.files)
        land(state, bodies, BATCHED)
        land(state, bodies[: args.sample], SINGLE)
        land(state, bodies, MANIFEST)
        api = Api(state["api"], state["username"], state["password"])
        conn = warehouse(state)
        print(f"landed and registered {args.files} + {args.sample} files; draining the batched backlog ...")
        manifest_s = drain(api, conn, MANIFEST, args.files, args.timeout)
        print(
            f"batched, one manifest COPY (rows not tagged): {args.files} files in {manifest_s:.1f} s, "
            f"{transactions(conn, MANIFEST)} COPY transaction(s); batched, one COPY per file (rows tagged) ..."
        )
        batched_s = drain(api, conn, BATCHED, args.files, args.timeout)
        c1 = transactions(conn, BATCHED)
        print(f"batched: {args.files} files in {batched_s:.1f} s, {c1} COPY transaction(s); one per run ...")
        single_s = drain(api, conn, SINGLE, args.sample, args.timeout)
        batched, single = per_file(conn, BATCHED), per_file(conn, SINGLE)
        done = {s for s, *_ in batched.values()} | {s for s, *_ in single.values()}
        identical = all(batched[name] == single[name] for name in single) and done == {"DONE"}
        f1 = args.files / batched_s * 60
        f2 = args.sample / single_s * 60
        bound = math.ceil(args.files / 1000)
        print(f"statuses: batched {statuses(conn, BATCHED)}, one per run {statuses(conn, SINGLE)}; C1 bound {bound}")
        print(
            f"backlog {args.files} files: batched {f1:.0f} files/min in {c1} COPY transactions; "
            f"one per run {f2:.1f} files/min; ratio {f1 / f2:.1f}; per-file counts identical: "
            f"{'yes' if identical else 'no'}"
        )
        return 0 if identical else 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(airflow.pid, signal.SIGTERM)
        try:
            airflow.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(airflow.pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
