"""What happens to a bad file: FAILED, quarantined, alerted; replayed in one step after the fix,
by the command or by the DAG's ``file_id`` param, with the earlier attempt kept in history."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack.stack import REPO
from redshift_ingest import register
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.dag_factory import build_dag
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"
KEY = "landing/weather/one-bad-row.csv"
BODY = (
    b"date,precipitation,temp_max,temp_min,wind,weather\n"
    b"2012-01-01,0.0,12.8,5.0,4.7,drizzle\n"
    b"2012-01-02,heavy,10.6,2.8,4.5,rain\n"
    b"2012-01-03,0.8,11.7,7.2,2.3,rain\n"
)


def weather(max_error: int) -> FileType:
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    data = base.model_dump()
    data["target"] = {**data["target"], "table": "weather.replayed"}
    data["copy_options"] = {**data["copy_options"], "max_error": max_error}
    return FileType.model_validate(data)


def row(warehouse, settings, file_id):
    found = register.get_file(warehouse, settings, file_id)
    warehouse.rollback()
    return found


@pytest.fixture
def failed_file(landing, warehouse, settings, stack):
    landing.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    head = landing.head_object(Bucket=BUCKET, Key=KEY)
    obj = S3Object(BUCKET, KEY, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    stack.slack.payloads.clear()
    build_dag(weather(max_error=0), settings).test()
    return obj.file_id


def test_a_bad_file_fails_is_quarantined_and_alerted(failed_file, warehouse, settings, landing, stack):
    found = row(warehouse, settings, failed_file)
    assert found["status"] == "FAILED"
    assert found["quarantine_key"] == "quarantine/" + KEY
    assert found["rows_rejected"] == 1 and found["first_error"].startswith("line 3, column precipitation")
    assert "into weather.replayed failed" in found["error_message"]
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert keys == {"quarantine/" + KEY, "quarantine/" + KEY + ".load_errors.csv"}
    [alert] = [p for p in stack.slack.payloads if "one-bad-row" in p["text"]]
    assert "First error: line 3, column precipitation" in alert["text"]
    assert "Error report: s3://example-landing-bucket/quarantine/" in alert["text"]


def replay_command(file_id: str) -> subprocess.CompletedProcess:
    """``python -m redshift_ingest.replay <file_id>`` with the stack's connections."""
    return subprocess.run(
        [sys.executable, "-m", "redshift_ingest.replay", file_id],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_replay_command_then_rerun(failed_file, warehouse, settings, landing):
    done = replay_command(failed_file)
    assert done.returncode == 0, done.stderr
    found = row(warehouse, settings, failed_file)
    assert found["status"] == "NEW" and found["quarantine_key"] is None
    landing.head_object(Bucket=BUCKET, Key=KEY)  # back in landing
    # Replaying a NEW file is refused with its state named.
    again = replay_command(failed_file)
    assert again.returncode == 1 and "is NEW; only FAILED files are replayed" in again.stderr
    # After the fix (MAXERROR raised), the next run loads it with its reject.
    build_dag(weather(max_error=5), settings).test()
    found = row(warehouse, settings, failed_file)
    assert (found["status"], found["rows_loaded"], found["rows_rejected"]) == ("DONE_WITH_REJECTS", 2, 1)


def test_replay_by_dag_param_in_one_step(failed_file, warehouse, settings, landing):
    build_dag(weather(max_error=5), settings).test(run_conf={"file_id": failed_file})
    found = row(warehouse, settings, failed_file)
    assert (found["status"], found["rows_loaded"], found["attempts"]) == ("DONE_WITH_REJECTS", 2, 2)
    assert found["archive_key"] == "archive/" + KEY
    with warehouse.cursor() as cur:
        cur.execute("SELECT history FROM public.mng WHERE file_id = %s", (failed_file,))
        history = cur.fetchone()[0]
    warehouse.rollback()
    assert "attempt 1 FAILED" in history and "into weather.replayed failed" in history


def test_replay_never_overwrites_a_newer_upload_in_landing(failed_file, warehouse, settings, landing):
    """The key was uploaded again (a fixed file, not registered yet) while the bad one sat in
    quarantine: replaying the bad one must not overwrite it."""
    fixed = BODY.replace(b"heavy", b"0.0")
    landing.put_object(Bucket=BUCKET, Key=KEY, Body=fixed)
    done = replay_command(failed_file)
    assert done.returncode == 1
    assert f"s3://{BUCKET}/{KEY} holds another object" in done.stderr and "not overwriting it" in done.stderr
    assert landing.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == fixed
    assert landing.get_object(Bucket=BUCKET, Key="quarantine/" + KEY)["Body"].read() == BODY
    assert row(warehouse, settings, failed_file)["status"] == "FAILED"
