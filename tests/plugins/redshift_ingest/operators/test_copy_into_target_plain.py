"""CopyIntoTargetOperator with plain arguments (no file type, no register), as a hand-written DAG
uses it: real TICKIT venue files (data/tickit/venue.txt) in moto's S3, COPYed by the Redshift
stand-in, with exact per-file counts and the table's contents checked."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from redshift_ingest import sql
from redshift_ingest.errors import LoadConfigError
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator, LoadRejected

pytestmark = pytest.mark.usefixtures("landing")
BUCKET = "example-landing-bucket"
REPO = Path(__file__).resolve().parents[4]
VENUE = REPO / "data" / "tickit" / "venue.txt"
LINES = VENUE.read_bytes().splitlines(keepends=True)  # 202 venues, pipe-delimited
PART_1, PART_2 = LINES[:100], LINES[100:]
# Rows 150-153 with the seat count of two made unreadable: 2 of 4 rows rejected.
BAD = [LINES[150], LINES[151].rsplit(b"|", 1)[0] + b"|many\n", LINES[152], LINES[153].rsplit(b"|", 1)[0] + b"|x\n"]


def seats(lines: list[bytes]) -> int:
    return sum(int(line.rsplit(b"|", 1)[1]) for line in lines)


def venue_table(warehouse, name: str) -> str:
    """A fresh ``tickit.<name>`` from the shipped TICKIT venue DDL; returns its name."""
    table = f"tickit.{name}"
    with warehouse.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS tickit")
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(sql.render("ddl/tickit_venue.sql", target=f'"tickit"."{name}"'))
    warehouse.commit()
    return table


def put(s3, key: str, lines: list[bytes], *, gz: bool = False) -> str:
    body = b"".join(lines)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body) if gz else body)
    return f"s3://{BUCKET}/{key}"


def contents(warehouse, table: str) -> tuple[int, int]:
    """(rows, total venueseats) of ``table``."""
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT count(*), coalesce(sum(venueseats), 0) FROM {table}")
        found = cur.fetchone()
    warehouse.rollback()
    return int(found[0]), int(found[1])


def copy(**arguments) -> dict:
    operator = CopyIntoTargetOperator(task_id="copy_venues", format="text", **arguments)
    return operator.execute({"run_id": "manual__plain"})


def test_s3_urls_load_in_one_copy_with_exact_per_file_counts(warehouse, landing):
    table = venue_table(warehouse, "venue_plain")
    urls = [
        put(landing, "plain/venue/part-1.txt", PART_1),
        put(landing, "plain/venue/part-2.txt", PART_2),
        put(landing, "plain/venue/bad-seats.txt", BAD),
    ]
    result = copy(table=table, s3_urls=urls, copy_options={"delimiter": "|", "max_error": 2})
    by_url = {f["url"]: f for f in result["files"]}
    assert [(by_url[u]["rows_loaded"], by_url[u]["rows_rejected"]) for u in urls] == [(100, 0), (102, 0), (2, 2)]
    assert by_url[urls[0]]["first_error"] is None
    assert by_url[urls[2]]["first_error"].startswith("line 2, column venueseats"), by_url[urls[2]]
    assert "many" in by_url[urls[2]]["first_error"]
    # One manifest COPY for the three files, so one query id for all.
    assert result["copies"] == 1 and len({f["copy_query_id"] for f in result["files"]}) == 1
    assert (result["rows_loaded"], result["rows_rejected"], result["skipped"]) == (204, 2, [])
    good = PART_1 + PART_2 + [BAD[0], BAD[2]]
    assert contents(warehouse, table) == (204, seats(good))
    # The operator's manifests are gone; the objects it loaded are where they were.
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert keys == {"plain/venue/part-1.txt", "plain/venue/part-2.txt", "plain/venue/bad-seats.txt"}


def test_a_manifest_url_loads_its_entries_with_per_file_counts(warehouse, landing):
    table = venue_table(warehouse, "venue_manifest")
    entries = [
        {"url": put(landing, "plain/venue/m-1.txt", PART_1), "mandatory": True},
        {"url": put(landing, "plain/venue/m-2.txt.gz", PART_2, gz=True), "mandatory": True},
        {"url": f"s3://{BUCKET}/plain/venue/not-there.txt", "mandatory": False},
    ]
    landing.put_object(Bucket=BUCKET, Key="plain/venue.manifest", Body=json.dumps({"entries": entries}).encode())
    result = copy(table=table, manifest=f"s3://{BUCKET}/plain/venue.manifest", copy_options={"delimiter": "|"})
    assert [(f["url"], f["rows_loaded"], f["rows_rejected"]) for f in result["files"]] == [
        (entries[0]["url"], 100, 0),
        (entries[1]["url"], 102, 0),
    ]
    assert result["copies"] == 2  # one manifest COPY per compression: plain text, then GZIP (by suffix)
    assert contents(warehouse, table) == (202, seats(LINES))


def test_a_file_over_maxerror_fails_the_task_and_nothing_is_committed(warehouse, landing):
    table = venue_table(warehouse, "venue_fail")
    urls = [put(landing, "plain/venue/ok.txt", PART_1), put(landing, "plain/venue/over.txt", BAD)]
    with pytest.raises(LoadRejected) as failed:
        copy(table=table, s3_urls=urls, copy_options={"delimiter": "|", "max_error": 1})
    message = str(failed.value)
    assert message.startswith("line 2, column venueseats"), message  # the first error first
    assert "2 rows rejected, more than MAXERROR 1 allows one file" in message
    assert message.endswith(f"nothing was loaded into {table}")
    assert failed.value.result.rows_rejected == 2
    assert contents(warehouse, table) == (0, 0)  # not even the good file


def test_on_bad_file_skip_loads_the_others_and_lists_the_bad_one(warehouse, landing):
    table = venue_table(warehouse, "venue_skip")
    urls = [put(landing, "plain/venue/ok.txt", PART_1), put(landing, "plain/venue/over.txt", BAD)]
    result = copy(table=table, s3_urls=urls, copy_options={"delimiter": "|"}, on_bad_file="skip")
    assert [(f["url"], f["rows_loaded"]) for f in result["files"]] == [(urls[0], 100)]
    [skipped] = result["skipped"]
    # MAXERROR 0: the file's COPY stops at its first bad row, so one row is recorded rejected.
    assert (skipped["url"], skipped["rows_loaded"], skipped["rows_rejected"]) == (urls[1], 0, 1)
    assert skipped["reason"].startswith("line 2, column venueseats")
    assert contents(warehouse, table) == (100, seats(PART_1))


def test_bad_arguments_are_refused_before_any_copy(warehouse, landing):
    table = venue_table(warehouse, "venue_args")
    url = put(landing, "plain/venue/ok.txt", PART_1)
    with pytest.raises(LoadConfigError, match=r"expected 'schema\.table'"):
        copy(table="Tickit.Venue; DROP TABLE x", s3_urls=[url])
    with pytest.raises(LoadConfigError, match=r"copy_options\.delimiter: .*one character"):
        copy(table=table, s3_urls=[url], copy_options={"delimiter": "||"})
    with pytest.raises(LoadConfigError, match="no such object"):
        copy(table=table, s3_urls=[url, f"s3://{BUCKET}/plain/venue/missing.txt"], copy_options={"delimiter": "|"})
    with pytest.raises(LoadConfigError, match="more than once"):
        copy(table=table, s3_urls=[url, url], copy_options={"delimiter": "|"})
    with pytest.raises(ValueError, match="one of s3_urls or manifest"):
        CopyIntoTargetOperator(task_id="t", table=table)
    assert contents(warehouse, table) == (0, 0)


# The docs' example: a hand-written DAG that loads two objects and hands the counts to a task.
HAND_WRITTEN_DAG = """
import json
import os
from datetime import datetime

from airflow.sdk import DAG, task

from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator

with DAG("load_venues", start_date=datetime(2026, 1, 1), schedule=None, params={"table": "tickit.venue_dag"}) as dag:
    load = CopyIntoTargetOperator(
        task_id="load_venues",
        table="{{ params.table }}",
        s3_urls=[URLS],
        format="text",
        copy_options={"delimiter": "|", "max_error": 10},
        redshift_conn_id="redshift_default",
        aws_conn_id="aws_default",
    )

    @task
    def report(loaded: dict) -> None:
        with open(os.environ["XCOM_OUT"], "w") as out:
            json.dump(loaded, out)

    report(load.output)
"""


def test_a_hand_written_dag_runs_it_and_passes_the_counts_on(warehouse, landing, tmp_path):
    """The operator in a plain DAG file, run by Airflow (``dag.test()`` in its own Airflow home, as
    the DAG folder is what it runs): ``table`` is templated, the XCom reaches the next task."""
    table = venue_table(warehouse, "venue_dag")
    urls = [put(landing, "plain/venue/dag-1.txt", PART_1), put(landing, "plain/venue/dag-bad.txt", BAD)]
    dags, home, out = tmp_path / "dags", tmp_path / "home", tmp_path / "xcom.json"
    dags.mkdir()
    (dags / "load_venues.py").write_text(HAND_WRITTEN_DAG.replace("URLS", ", ".join(map(repr, urls))))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO), str(dags)]),
        "XCOM_OUT": str(out),
    }
    script = textwrap.dedent("""
        import subprocess, sys
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
        import load_venues
        run = load_venues.dag.test()
        sys.exit(0 if run.state == "success" else f"the run ended {run.state}")
    """)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    xcom = json.loads(out.read_text())
    query_id = xcom["files"][0]["copy_query_id"]
    assert isinstance(query_id, int) and query_id > 0
    first_error = xcom["files"][1]["first_error"]
    assert first_error.startswith("line 2, column venueseats (int4): Invalid digit"), first_error
    assert xcom == {
        "files": [
            {"url": urls[0], "rows_loaded": 100, "rows_rejected": 0, "first_error": None, "copy_query_id": query_id},
            {
                "url": urls[1],
                "rows_loaded": 2,
                "rows_rejected": 2,
                "first_error": first_error,
                "copy_query_id": query_id,
            },
        ],
        "rows_loaded": 102,
        "rows_rejected": 2,
        "copies": 1,
        "skipped": [],
    }
    assert contents(warehouse, table) == (102, seats([*PART_1, BAD[0], BAD[2]]))
