"""``make demo``: real files land in S3, get registered by the Lambda handler, loaded by the real DAGs.

Starts the embedded stack (PostgreSQL + the Redshift stand-in, moto S3, SMTP sink, Slack receiver),
uploads the sample files in ``data/`` under the landing prefixes of the file types, registers them
with real-shaped S3 events (S3 notification and EventBridge shapes) through
``lambdas/register_file/handler.py``, runs each file type's DAG with Airflow's ``dag.test()`` until
its files are done, and prints one row per file. Exit status 0 when every file ends as expected.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

from devstack.stack import REPO, EmbeddedStack, migrate_airflow_db
from devstack.statsd_sink import StatsdSink

DATA = REPO / "data"


@dataclass(frozen=True)
class DemoFile:
    """A sample file, where it lands, and how it must end."""

    path: Path
    key: str
    expect_status: str
    expect_rows: int | None = None
    event_shape: str = "s3"  # "s3" notification or "eventbridge"


DEMO_FILES = (
    DemoFile(DATA / "tickit/category.txt", "landing/tickit/category/category_pipe.txt", "DONE", 11),
    DemoFile(DATA / "tickit/venue.txt", "landing/tickit/venue/venue_pipe.txt", "DONE", 202, "eventbridge"),
    DemoFile(DATA / "tickit/date.txt", "landing/tickit/date/date2008_pipe.txt", "DONE", 365),
    DemoFile(DATA / "tickit/event.txt", "landing/tickit/event/allevents_pipe.txt", "DONE", 8798, "eventbridge"),
    DemoFile(DATA / "csv/seattle-weather.csv", "landing/weather/seattle weather 2012-2015.csv", "DONE", 1461),
    DemoFile(DATA / "gzip/stocks.csv.gz", "landing/stocks/stocks.csv.gz", "DONE", 105),
    DemoFile(DATA / "json/sample-tweets-100.jsonl", "landing/tweets/sample-tweets-100.jsonl", "DONE", 100),
    # A zip (one member) and a zip whose name does not say so: staged as gzip, then COPY.
    DemoFile(DATA / "zip/table.csv.zip", "landing/languages/table.csv.zip", "DONE", 2),
    DemoFile(DATA / "zip/implicit-zip-named.csv", "landing/languages/implicit-zip-named.csv", "DONE", 2),
    # A top-level JSON array: staged as newline-delimited JSON for JSON 'auto'.
    DemoFile(DATA / "json/github_events.json", "landing/github/events/github_events.json", "DONE", 30),
    # Real rows that do not load ('NA' in numeric columns): loaded with rejects, up to MAXERROR.
    DemoFile(
        DATA / "csv/penguins-raw.csv",
        "landing/penguins/penguins-raw.csv",
        "DONE_WITH_REJECTS",
        None,  # counted from the file itself in report()
        "eventbridge",
    ),
    # A real bad file: csvkit's bad.csv (other columns, ragged rows) dropped into the weather folder.
    DemoFile(DATA / "malformed/csvkit-examples/bad.csv", "landing/weather/bad.csv", "FAILED", 0),
    # A key no file type matches: recorded, never dropped.
    DemoFile(DATA / "malformed/csvkit-examples/iris.csv", "landing/unknown/iris.csv", "UNMATCHED"),
)
# load_mode merge: two overlapping drops of the stock prices (data/gzip/stocks-drops.md), landed and
# loaded one after the other; the second corrects ten weeks of the first and adds 25.
MERGE_TYPE = "stock_prices_upsert"
MERGE_DROPS = (
    DemoFile(DATA / "gzip/stocks-drop-1.csv.gz", "landing/stock-drops/stocks-drop-1.csv.gz", "DONE", 80),
    DemoFile(DATA / "gzip/stocks-drop-2.csv.gz", "landing/stock-drops/stocks-drop-2.csv.gz", "DONE", 35, "eventbridge"),
)


def penguin_rows_with_na() -> tuple[int, int]:
    """(rows, rows with 'NA' in a numeric column) of penguins-raw.csv, counted with the csv module."""
    import csv

    numeric = {
        "Culmen Length (mm)",
        "Culmen Depth (mm)",
        "Flipper Length (mm)",
        "Body Mass (g)",
        "Delta 15 N (o/oo)",
        "Delta 13 C (o/oo)",
    }
    with (DATA / "csv/penguins-raw.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return len(rows), sum(any(r[c] == "NA" for c in numeric) for r in rows)


def s3_notification(bucket: str, obj: dict) -> dict:
    """An S3 event notification as S3 sends it (key URL-encoded, AWS "Event message structure")."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": obj["LastModified"],
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "register-file",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(obj["Key"], safe="/"),
                        "size": obj["Size"],
                        "eTag": obj["ETag"],
                        "sequencer": "0062E99A88DC407460",
                    },
                },
            }
        ]
    }


def eventbridge_event(bucket: str, obj: dict) -> dict:
    """An EventBridge ``Object Created`` event as S3 sends it (AWS "EventBridge event message structure")."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": obj["LastModified"],
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": obj["Key"],
                "size": obj["Size"],
                "etag": obj["ETag"],
                "sequencer": "00617F08299329D189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def load_lambda_handler():
    """Import ``lambdas/register_file/handler.py`` as the Lambda runtime would."""
    spec = importlib.util.spec_from_file_location("register_file_handler", REPO / "lambdas/register_file/handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def land_and_register(stack: EmbeddedStack, bucket: str, files: tuple[DemoFile, ...]) -> list[dict]:
    """Upload ``files`` to S3 and register each through the Lambda handler; returns its answers."""
    import boto3

    s3 = boto3.client("s3")
    secrets = boto3.client("secretsmanager")
    existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    env = stack.registration_env()
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=env["REDSHIFT_SECRET_ARN"], SecretString=json.dumps({"password": "local-only"}))
    os.environ.update(env)
    handler = load_lambda_handler()
    answers = []
    for demo_file in files:
        s3.upload_file(str(demo_file.path), bucket, demo_file.key)
        head = s3.head_object(Bucket=bucket, Key=demo_file.key)
        obj = {
            "Key": demo_file.key,
            "Size": head["ContentLength"],
            "ETag": head["ETag"].strip('"'),
            "LastModified": head["LastModified"].isoformat().replace("+00:00", "Z"),
        }
        event = (
            eventbridge_event(bucket, obj) if demo_file.event_shape == "eventbridge" else s3_notification(bucket, obj)
        )
        answers.append(handler.handler(event, None))
    return answers


def run_dags(file_types, max_runs_per_type: int = 10) -> None:
    """Run each file type's DAG with ``dag.test()`` while it has NEW files."""
    from airflow.dag_processing.dagbag import DagBag

    from redshift_ingest import register
    from redshift_ingest.config import default_settings
    from redshift_ingest.hooks.warehouse import WarehouseHook

    settings = default_settings()
    dagbag = DagBag(str(REPO / "dags"))
    if dagbag.import_errors:
        raise SystemExit(f"DAG import errors: {dagbag.import_errors}")
    for file_type in file_types:
        dag = dagbag.dags[file_type.dag_id]
        for _ in range(max_runs_per_type):
            conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
            with conn.cursor() as cur:
                cur.execute(
                    f"SELECT count(*) FROM {settings.register_table.quoted} WHERE file_type = %s AND status = %s",
                    (file_type.name, register.NEW),
                )
                pending = cur.fetchone()[0]
            conn.close()
            if not pending:
                break
            print(f"--- running {dag.dag_id} ({pending} NEW file(s))", flush=True)
            dag.test()


def report(bucket: str, files: tuple[DemoFile, ...]) -> tuple[list[dict], list[str]]:
    """The register rows of the demo files and the list of files that did not end as expected."""
    from redshift_ingest.config import default_settings
    from redshift_ingest.hooks.warehouse import WarehouseHook

    settings = default_settings()
    conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT file_type, s3_key, status, rows_loaded, rows_rejected, archive_key, quarantine_key, "
            f"error_message FROM {settings.register_table.quoted} WHERE bucket = %s ORDER BY registered_at, s3_key",
            (bucket,),
        )
        columns = [d[0] for d in cur.description]
        rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    conn.close()
    by_key = {r["s3_key"]: r for r in rows}
    problems = []
    for demo_file in files:
        row = by_key.get(demo_file.key)
        if row is None:
            problems.append(f"{demo_file.key}: not registered")
            continue
        if row["status"] != demo_file.expect_status:
            problems.append(f"{demo_file.key}: {row['status']}, expected {demo_file.expect_status}")
        if demo_file.expect_rows is not None and (row["rows_loaded"] or 0) != demo_file.expect_rows:
            problems.append(f"{demo_file.key}: {row['rows_loaded']} rows loaded, expected {demo_file.expect_rows}")
    return rows, problems


def _query(sql: str, params: tuple = ()) -> list[tuple]:
    from redshift_ingest.config import default_settings
    from redshift_ingest.hooks.warehouse import WarehouseHook

    conn = WarehouseHook(warehouse_conn_id=default_settings().warehouse_conn_id).get_conn()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def merge_table_rows(file_type) -> int:
    return _query(f"SELECT count(*) FROM {file_type.target.table.quoted}")[0][0]


def merge_result(file_type, rows_after_first: int, register_rows: list[dict]) -> tuple[str, list[str]]:
    """The demo's merge line, and what is not as expected: the table must equal ``stocks.csv.gz``
    (the drops' source) row for row, one row per week.

    Updated and inserted rows of the second drop come from the table's row counts: the first drop
    went into an empty table, the second added ``table rows - rows after the first`` weeks and
    replaced the rest of its rows.
    """
    import csv
    import gzip

    table = file_type.target.table.quoted
    found = _query(f"SELECT date, goog, aapl, amzn, fb, nflx, msft FROM {table} ORDER BY date")
    total, keys = _query(f"SELECT count(*), count(DISTINCT date) FROM {table}")[0]
    with gzip.open(DATA / "gzip/stocks.csv.gz", "rt", newline="") as handle:
        expected = [(r[0], *map(float, r[1:])) for r in list(csv.reader(handle))[1:]]
    loaded = {r["s3_key"]: r["rows_loaded"] or 0 for r in register_rows}
    first, second = (loaded.get(f.key, 0) for f in MERGE_DROPS)
    inserted = total - rows_after_first
    line = (
        f"merge {file_type.name}: file 1 inserted {rows_after_first} rows; file 2 updated {second - inserted} rows, "
        f"inserted {inserted}; table has {total} rows, {keys} keys" + (", one per key" if total == keys else "")
    )
    problems = []
    if rows_after_first != first:
        problems.append(f"{file_type.name}: {rows_after_first} rows after the first drop, it loaded {first}")
    if [(d.isoformat(), *v) for d, *v in found] != expected:
        problems.append(f"{file_type.name}: the merged table differs from data/gzip/stocks.csv.gz")
    return line, problems


def print_table(rows: list[dict]) -> None:
    header = ("file type", "key", "status", "rows loaded", "rows rejected", "archive / quarantine key")
    table = [header] + [
        (
            r["file_type"] or "-",
            r["s3_key"],
            r["status"],
            "-" if r["rows_loaded"] is None else f"{r['rows_loaded']:,}",
            "-" if r["rows_rejected"] is None else f"{r['rows_rejected']:,}",
            r["archive_key"] or r["quarantine_key"] or "-",
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_alerts(stack: EmbeddedStack) -> None:
    print(f"\nSlack messages received by the local webhook ({len(stack.slack.payloads)}):")
    for payload in stack.slack.payloads:
        print("  " + payload["text"].replace("\n", "\n    "))
    print(f"\nEmails received by the SMTP sink ({len(stack.smtp.messages)}):")
    for message in stack.smtp.messages:
        print(f"  To: {message['To']}  Subject: {message['Subject']}")


def run_health(file_types) -> None:
    """One run of ``register_health``: the backlog metrics (and alerts, when configured)."""
    from redshift_ingest.config import default_settings
    from redshift_ingest.maintenance import build_health_dag

    print("--- running register_health", flush=True)
    build_health_dag(default_settings(), tuple(file_types)).test()


def print_operations(statsd: StatsdSink) -> None:
    """Where the File register view is, and the pipeline's metrics this run emitted."""
    from redshift_ingest.register_app import URL_PREFIX

    print(f"\nFile register view: {URL_PREFIX}/ on the API server (Airflow UI: Browse > File register)")
    names = statsd.names("redshift_ingest.")
    print(f"Metrics emitted through Airflow's Stats ({len(names)}):")
    for name in names:
        print("  " + name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo", help="state of the run (wiped first)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # Deprecation notices from Airflow's and pathspec's own modules say nothing about the files: keep
    # the demo's output to what happened to each file (`make test` still sees every warning).
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    shutil.rmtree(args.workdir, ignore_errors=True)
    with EmbeddedStack(args.workdir) as stack:
        env = stack.airflow_env()
        os.environ.update(env)  # before Airflow is imported: it reads AIRFLOW_HOME at import
        print("Local stack up: Redshift stand-in on port", stack.redshift.port, "| S3", stack.s3.endpoint_url)
        migrate_airflow_db(env)

        from redshift_ingest.config import default_file_types, default_settings

        settings = default_settings()
        bucket = settings.landing_bucket
        answers = land_and_register(stack, bucket, (*DEMO_FILES, *MERGE_DROPS[:1]))
        print(
            f"Registered through the Lambda handler: {sum(a['registered'] for a in answers)} files, "
            f"{sum(a['unmatched'] for a in answers)} unmatched"
        )
        merge_type = next(ft for ft in default_file_types() if ft.name == MERGE_TYPE)
        with StatsdSink() as statsd:
            run_dags(default_file_types())
            # The second drop lands after the first is loaded, as a producer's next delivery would.
            rows_after_first = merge_table_rows(merge_type)
            land_and_register(stack, bucket, MERGE_DROPS[1:])
            run_dags([merge_type])
            run_health(default_file_types())
        rows, problems = report(bucket, (*DEMO_FILES, *MERGE_DROPS))
        merge_line, merge_problems = merge_result(merge_type, rows_after_first, rows)
        problems += merge_problems
        print()
        print_table(rows)
        print("\n" + merge_line)
        print_alerts(stack)
        print_operations(statsd)
        if problems:
            print("\nNOT AS EXPECTED:\n  " + "\n  ".join(problems))
            return 1
        print("\nEvery file ended as expected.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
