"""Every file type's DAG end to end: real files land in moto S3, the Lambda handler registers them,
the real Airflow runs the real DAGs (``dag.test()``) against the Redshift stand-in."""

from __future__ import annotations

import pytest

from devstack import demo
from redshift_ingest.hooks.warehouse import WarehouseHook

BUCKET = "example-landing-bucket"


@pytest.fixture(scope="module")
def demo_run(stack, file_types, settings):
    """The demo's whole job, once for the module: land, register, run every DAG."""
    import boto3

    from redshift_ingest.register import ensure_register

    s3 = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    ensure_register(conn, settings)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM public.mng")
    conn.commit()
    conn.close()
    answers = demo.land_and_register(stack, BUCKET, demo.DEMO_FILES)
    stack.slack.payloads.clear()
    stack.smtp.messages.clear()
    demo.run_dags(file_types)
    rows, problems = demo.report(BUCKET, demo.DEMO_FILES)
    return {"answers": answers, "rows": rows, "problems": problems, "s3": s3}


def query(sql: str, params=()):
    conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    with conn.cursor() as cur:
        cur.execute(sql, params)
        result = cur.fetchall()
    conn.close()
    return result


def test_every_file_ends_as_expected(demo_run):
    assert demo_run["problems"] == []


def test_tickit_counts_are_the_documented_ones(demo_run):
    counts = {
        table: query(f"SELECT count(*) FROM tickit.{table}")[0][0] for table in ("category", "venue", "date", "event")
    }
    assert counts == {"category": 11, "venue": 202, "date": 365, "event": 8798}


def test_target_tables_hold_what_the_register_says(demo_run, file_types):
    # A merge type's rows loaded count the rows its COPYs read, not the rows it left (updates replace
    # rows): the demo checks its merged table against the source file instead.
    for ft in (ft for ft in file_types if ft.load_mode != "merge"):
        loaded = query(
            "SELECT coalesce(sum(rows_loaded), 0) FROM public.mng WHERE file_type = %s AND status LIKE 'DONE%%'",
            (ft.name,),
        )[0][0]
        in_table = query(f"SELECT count(*) FROM {ft.target.table.quoted}")[0][0]
        assert in_table == loaded, ft.name


def test_values_survive_the_trip(demo_run):
    assert query("SELECT catname FROM tickit.category WHERE catid = 11") == [("Classical",)]
    assert query("SELECT name FROM reference.languages WHERE id = 2") == [("中国人",), ("中国人",)]
    assert query("SELECT count(*) FROM social.github_events WHERE created_at >= '2013-01-01'") == [(30,)]
    [(date, weather)] = query("SELECT date, weather FROM weather.daily_observations ORDER BY date LIMIT 1")
    assert (str(date), weather) == ("2012-01-01", "drizzle")


def test_nothing_stays_in_progress(demo_run):
    assert query("SELECT count(*) FROM public.mng WHERE status IN ('NEW', 'IN_PROGRESS')") == [(0,)]


def test_every_file_is_in_exactly_one_place(demo_run):
    s3 = demo_run["s3"]
    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    }
    for key, status in query("SELECT s3_key, status FROM public.mng"):
        places = [p for p in ("", "archive/", "quarantine/") if p + key in keys]
        assert len(places) == 1, (key, status, places)
        expected = {"DONE": "archive/", "DONE_WITH_REJECTS": "archive/", "FAILED": "quarantine/", "UNMATCHED": ""}
        assert places[0] == expected[status], (key, status)
    assert not [k for k in keys if k.startswith("staging/")], "staged copies are cleaned up"


def test_rejected_rows_are_reported_next_to_the_file(demo_run):
    [(report_key, first_error, rejected)] = query(
        "SELECT error_report_key, first_error, rows_rejected FROM public.mng WHERE file_type = 'penguins'"
    )
    assert report_key == "archive/landing/penguins/penguins-raw.csv.load_errors.csv"
    assert "Invalid digit" in first_error and "line " in first_error
    body = demo_run["s3"].get_object(Bucket=BUCKET, Key=report_key)["Body"].read().decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("line_number,column_name")
    assert len(lines) == 1 + rejected


def test_the_bad_file_failed_with_its_alerts(demo_run, stack):
    [(status, error, quarantine)] = query(
        "SELECT status, error_message, quarantine_key FROM public.mng WHERE s3_key = 'landing/weather/bad.csv'"
    )
    assert status == "FAILED"
    assert "header does not match" in error and "column_a" in error
    assert quarantine == "quarantine/landing/weather/bad.csv"
    slack = [p for p in stack.slack.payloads if "bad.csv" in p["text"]]
    assert len(slack) == 1
    assert slack[0]["_path"].endswith("local-webhook-token")
    fields = " ".join(f["text"] for b in slack[0]["blocks"] if b["type"] == "section" for f in b["fields"])
    assert "FAILED" in fields and "header does not match" in fields and "quarantine/landing/weather/bad.csv" in fields
    mails = [m for m in stack.smtp.messages if "bad.csv" in m["Subject"]]
    assert len(mails) == 1 and mails[0]["To"] == "weather-team@example.com"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mails[0].walk() if not p.is_multipart()}
    assert "header does not match" in parts["text/html"] and "Airflow run" in parts["text/html"]
    assert "header does not match" in parts["text/html"]  # SmtpNotifier sends HTML
    assert "s3://example-landing-bucket/quarantine/landing/weather/bad.csv" in parts["text/html"]


def test_loaded_with_rejects_alerts(demo_run, stack):
    slack = [p for p in stack.slack.payloads if "penguins" in p["text"]]
    assert len(slack) == 1 and "DONE_WITH_REJECTS" in slack[0]["text"] and "Rows rejected: 14" in slack[0]["text"]


def test_rerun_of_a_finished_dag_loads_nothing_twice(demo_run, file_types):
    """A second pass over every DAG finds no NEW file: the sensor's question is answered 'no'."""
    before = query("SELECT count(*) FROM tickit.event")[0][0]
    demo.run_dags(file_types)
    assert query("SELECT count(*) FROM tickit.event")[0][0] == before
