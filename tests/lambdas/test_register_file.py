"""The register_file Lambda handler on real event shapes, against moto (S3, Secrets Manager, SSM) and
the Redshift stand-in; and the same code as a command and as reconcile."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import boto3
import pytest

from devstack.demo import eventbridge_event, load_lambda_handler, s3_notification
from devstack.stack import REPO
from redshift_ingest.registration import EventError, objects_from_event

pytestmark = pytest.mark.usefixtures("landing")
BUCKET = "example-landing-bucket"


@pytest.fixture
def lambda_env(stack, monkeypatch):
    """The Lambda's environment: where Redshift is, and the *name* of the secret holding the password."""
    secrets = boto3.client("secretsmanager")
    env = stack.registration_env()
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=env["REDSHIFT_SECRET_ARN"], SecretString=json.dumps({"password": "x"}))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def handler(lambda_env):
    return load_lambda_handler()


HEADER = b"date,precipitation,temp_max,temp_min,wind,weather\n"


def land(s3, key: str, body: bytes = HEADER) -> dict:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    return {
        "Key": key,
        "Size": head["ContentLength"],
        "ETag": head["ETag"].strip('"'),
        "LastModified": head["LastModified"].isoformat().replace("+00:00", "Z"),
    }


def rows(warehouse):
    with warehouse.cursor() as cur:
        cur.execute("SELECT s3_key, file_type, status, size_bytes, etag, registered_by FROM public.mng ORDER BY s3_key")
        result = cur.fetchall()
    warehouse.rollback()
    return result


def test_s3_notification_with_url_encoded_key(landing, handler, warehouse):
    key = "landing/weather/Seattle été 2015+2016.csv"
    event = s3_notification(BUCKET, land(landing, key))
    assert event["Records"][0]["s3"]["object"]["key"] == "landing/weather/Seattle+%C3%A9t%C3%A9+2015%2B2016.csv"
    answer = handler.handler(event, None)
    assert answer["registered"] == 1 and answer["duplicates"] == 0
    [(s3_key, file_type, status, size, etag, by)] = rows(warehouse)
    assert (s3_key, file_type, status, by) == (key, "seattle_weather", "NEW", "lambda")
    assert size == len(HEADER) and len(etag) == 32


def test_eventbridge_event(landing, handler, warehouse):
    key = "landing/tickit/venue/venue_pipe.txt"
    answer = handler.handler(eventbridge_event(BUCKET, land(landing, key)), None)
    assert answer["registered"] == 1
    assert rows(warehouse)[0][:3] == (key, "tickit_venue", "NEW")


def test_duplicate_event_inserts_nothing(landing, handler, warehouse):
    event = s3_notification(BUCKET, land(landing, "landing/weather/dup.csv"))
    assert handler.handler(event, None)["registered"] == 1
    again = handler.handler(event, None)
    assert again["registered"] == 0 and again["duplicates"] == 1
    assert len(rows(warehouse)) == 1


def test_same_key_new_content_is_a_new_file(landing, handler, warehouse):
    first = handler.handler(s3_notification(BUCKET, land(landing, "landing/weather/v.csv", b"a\n")), None)
    second = handler.handler(s3_notification(BUCKET, land(landing, "landing/weather/v.csv", b"b\n")), None)
    assert first["files"][0]["file_id"] != second["files"][0]["file_id"]
    assert len(rows(warehouse)) == 2


def test_unknown_key_is_recorded_unmatched(landing, handler, warehouse):
    answer = handler.handler(s3_notification(BUCKET, land(landing, "landing/nobody/knows.bin")), None)
    assert answer["unmatched"] == 1
    assert rows(warehouse)[0][1:3] == (None, "UNMATCHED")


def test_keys_outside_landing_are_ignored(landing, handler, warehouse):
    answer = handler.handler(s3_notification(BUCKET, land(landing, "archive/landing/weather/x.csv")), None)
    assert answer["files"] == []
    assert rows(warehouse) == []


def test_sqs_batch_of_s3_notifications(landing, handler, warehouse):
    notice = s3_notification(BUCKET, land(landing, "landing/weather/sqs.csv"))
    event = {"Records": [{"messageId": "1", "body": json.dumps(notice), "eventSource": "aws:sqs"}]}
    assert handler.handler(event, None)["registered"] == 1


def test_other_events_are_refused_clearly():
    with pytest.raises(EventError, match="not an S3 event notification"):
        objects_from_event({"hello": "world"})
    removed = {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {}}]}
    assert objects_from_event(removed) == []


def test_password_from_ssm_parameter(landing, lambda_env, monkeypatch, warehouse):
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/local/redshift/password", Value="x", Type="SecureString", Overwrite=True)
    monkeypatch.delenv("REDSHIFT_SECRET_ARN")
    monkeypatch.setenv("REDSHIFT_PASSWORD_PARAMETER", "/local/redshift/password")
    handler = load_lambda_handler()
    assert handler.handler(s3_notification(BUCKET, land(landing, "landing/weather/ssm.csv")), None)["registered"] == 1


def test_missing_configuration_is_named(monkeypatch):
    from redshift_ingest.registration import connect_from_environment

    monkeypatch.delenv("REDSHIFT_HOST", raising=False)
    with pytest.raises(KeyError, match="REDSHIFT_HOST"):
        connect_from_environment()


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redshift_ingest.registration", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_command_registers_urls_and_event_files(landing, lambda_env, warehouse, tmp_path):
    land(landing, "landing/weather/cli.csv")
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(eventbridge_event(BUCKET, land(landing, "landing/stocks/s.csv.gz"))))
    done = _cli(f"s3://{BUCKET}/landing/weather/cli.csv", "--event-file", str(event_file), env=lambda_env)
    assert done.returncode == 0, done.stderr
    assert "registered" in done.stdout
    assert [r[:3] for r in rows(warehouse)] == [
        ("landing/stocks/s.csv.gz", "stock_prices", "NEW"),
        ("landing/weather/cli.csv", "seattle_weather", "NEW"),
    ]
    assert "x" not in done.stdout.split()  # the password is never printed


def test_reconcile_registers_missed_objects_and_reports_vanished(landing, lambda_env, handler, warehouse):
    handler.handler(s3_notification(BUCKET, land(landing, "landing/weather/seen.csv")), None)
    land(landing, "landing/weather/missed.csv")  # its event was lost
    landing.delete_object(Bucket=BUCKET, Key="landing/weather/seen.csv")  # registered, then gone
    done = _cli("--reconcile", env=lambda_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert report["registered"] == [f"s3://{BUCKET}/landing/weather/missed.csv"]
    assert report["vanished"] == [f"s3://{BUCKET}/landing/weather/seen.csv"]
    # A second reconcile finds nothing new.
    again = json.loads(_cli("--reconcile", env=lambda_env).stdout.split("\n}")[0] + "\n}")
    assert again["registered"] == []
