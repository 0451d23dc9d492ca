"""The register_file Lambda handler on real event shapes, against moto (S3, Secrets Manager, SSM) and
the Redshift stand-in; and the same code as a command and as reconcile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import psycopg2
import pytest

from devstack.demo import eventbridge_event, load_lambda_handler, s3_notification
from devstack.stack import REPO
from redshift_ingest.registration import EventError, objects_from_event

pytestmark = pytest.mark.usefixtures("landing")
BUCKET = "example-landing-bucket"


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
    assert handler.handler(event, None) == {"batchItemFailures": []}  # a partial batch response
    assert rows(warehouse)[0][:3] == ("landing/weather/sqs.csv", "seattle_weather", "NEW")


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


# --- issue 14 item 4: batches, SNS, other buckets, test events, LANDING_PREFIX, the warehouse down --


def sqs(*bodies: str | dict) -> dict:
    """An SQS event as Lambda receives it (AWS "Using Lambda with Amazon SQS")."""
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:landing-events",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def sns_envelope(message: dict) -> dict:
    """An SNS notification as an SQS subscription without raw delivery receives it."""
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:landing",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2026-12-02T14:00:00.000Z",
    }


TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-12-02T14:00:00.000Z",
    "Bucket": BUCKET,
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def test_one_poison_message_in_an_sqs_batch_fails_alone(landing, handler, warehouse):
    good = s3_notification(BUCKET, land(landing, "landing/weather/good.csv"))
    other = eventbridge_event(BUCKET, land(landing, "landing/tickit/venue/v.txt"))
    answer = handler.handler(
        sqs(good, "this is not json", {"Records": [{"eventName": "ObjectCreated:Put"}]}, other), None
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert [r[:3] for r in rows(warehouse)] == [
        ("landing/tickit/venue/v.txt", "tickit_venue", "NEW"),
        ("landing/weather/good.csv", "seattle_weather", "NEW"),
    ]


def test_sns_wrapped_s3_events_are_registered(landing, handler, warehouse):
    direct = s3_notification(BUCKET, land(landing, "landing/weather/sns.csv"))
    sns_to_lambda = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": sns_envelope(direct)}]}
    assert handler.handler(sns_to_lambda, None)["registered"] == 1
    queued = s3_notification(BUCKET, land(landing, "landing/weather/sns-sqs.csv"))
    assert handler.handler(sqs(sns_envelope(queued)), None) == {"batchItemFailures": []}
    assert [r[0] for r in rows(warehouse)] == ["landing/weather/sns-sqs.csv", "landing/weather/sns.csv"]


def test_events_of_another_bucket_are_ignored(landing, handler, warehouse, caplog):
    event = s3_notification("someone-elses-bucket", land(landing, "landing/weather/elsewhere.csv"))
    assert handler.handler(event, None)["files"] == []
    assert rows(warehouse) == []
    assert "bucket 'someone-elses-bucket' is not the landing bucket" in caplog.text


def test_s3_test_events_are_skipped_not_failed(landing, handler, warehouse):
    assert handler.handler(TEST_EVENT, None)["files"] == []
    assert handler.handler(sqs(TEST_EVENT, sns_envelope(TEST_EVENT)), None) == {"batchItemFailures": []}
    assert rows(warehouse) == []


def test_the_templates_landing_prefix_is_read(landing, handler, warehouse, monkeypatch):
    monkeypatch.setenv("LANDING_PREFIX", "landing/weather/")
    event = sqs(
        s3_notification(BUCKET, land(landing, "landing/weather/in.csv")),
        s3_notification(BUCKET, land(landing, "landing/tickit/venue/out.txt")),
    )
    assert handler.handler(event, None) == {"batchItemFailures": []}
    assert [r[0] for r in rows(warehouse)] == ["landing/weather/in.csv"]


def test_a_batch_of_1000_records_registers_in_one_transaction(landing, handler, warehouse):
    """10 SQS messages of 100 S3 records each (S3 sends one record a message; EventBridge and
    replayed batches send more): one INSERT in one transaction. Every row inserted by one
    transaction carries the same PostgreSQL ``xmin`` (the stand-in relays the query as it is)."""
    notices = []
    for m in range(10):
        records = []
        for r in range(100):
            obj = {"Key": f"landing/weather/batch/{m:02d}-{r:03d}.csv", "Size": 10, "ETag": f"{m:02d}{r:030d}"}
            records += s3_notification(BUCKET, {**obj, "LastModified": "2026-12-02T14:00:00.000Z"})["Records"]
        notices.append({"Records": records})
    # A duplicate delivery and a newer version of one key in the same batch.
    notices.append(notices[0])
    newer = {
        "Key": "landing/weather/batch/00-000.csv",
        "Size": 11,
        "ETag": "f" * 32,
        "LastModified": "2026-12-02T14:05:00Z",
    }
    notices.append(s3_notification(BUCKET, newer))
    assert handler.handler(sqs(*notices), None) == {"batchItemFailures": []}
    with warehouse.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT xmin::text), count(DISTINCT file_id) FROM public.mng")
        assert cur.fetchone() == (1001, 1, 1001)
        cur.execute(
            "SELECT etag, status, superseded_by IS NOT NULL FROM public.mng WHERE s3_key LIKE '%/00-000.csv' ORDER BY 1"
        )
        assert cur.fetchall() == [("0" * 32, "FILTERED_OUT", True), ("f" * 32, "NEW", False)]
    warehouse.rollback()


def test_the_warehouse_down_fails_the_records_so_they_are_retried(landing, handler, warehouse, lambda_env, monkeypatch):
    """The connection is refused (nothing listens on the port): every SQS message of the batch is
    reported failed (SQS delivers it again), a direct event raises (Lambda retries it); once the
    warehouse is back, the next delivery or the reconcile registers the files."""
    from devstack.services import free_port

    event = sqs(s3_notification(BUCKET, land(landing, "landing/weather/down-1.csv")), TEST_EVENT)
    direct = s3_notification(BUCKET, land(landing, "landing/weather/down-2.csv"))
    monkeypatch.setenv("REDSHIFT_PORT", str(free_port("127.0.0.1")))
    cold = load_lambda_handler()  # a new execution environment: no connection yet
    assert cold.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    with pytest.raises(psycopg2.OperationalError):
        cold.handler(direct, None)
    assert rows(warehouse) == []

    monkeypatch.setenv("REDSHIFT_PORT", lambda_env["REDSHIFT_PORT"])
    assert cold.handler(event, None) == {"batchItemFailures": []}  # SQS's next delivery
    done = _cli("--reconcile", env=lambda_env)  # and the reconcile for what the direct event lost
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in rows(warehouse)] == ["landing/weather/down-1.csv", "landing/weather/down-2.csv"]


def test_a_warm_lambda_drops_a_connection_the_warehouse_closed(landing, handler, warehouse):
    assert handler.handler(s3_notification(BUCKET, land(landing, "landing/weather/w1.csv")), None)["registered"] == 1
    with warehouse.cursor() as cur:  # the warehouse ends the Lambda's session (a restart, a failover)
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'register_file'")
    warehouse.commit()
    event = sqs(s3_notification(BUCKET, land(landing, "landing/weather/w2.csv")))
    assert handler.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert handler.handler(event, None) == {"batchItemFailures": []}  # the retry reconnects
    assert len(rows(warehouse)) == 2
