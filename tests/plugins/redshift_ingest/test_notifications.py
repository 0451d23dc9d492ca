"""Alerts through the providers' notifiers to the stack's real SMTP sink and Slack webhook receiver:
keys are user input, escaped wherever they are shown; one alert can list a run's files."""

from __future__ import annotations

import json
import logging
import os
from email.header import decode_header, make_header

import pytest

from redshift_ingest.config import Settings
from redshift_ingest.notifications import BatchAlert, FileAlert, FileLine, printable, send_alert

BUCKET = "example-landing-bucket"


@pytest.fixture
def weather(file_types):
    [file_type] = [ft for ft in file_types if ft.name == "seattle_weather"]
    assert file_type.alerts.slack and file_type.alerts.email == ("weather-team@example.com",)
    return file_type


@pytest.fixture
def sinks(stack):
    stack.smtp.messages.clear()
    stack.slack.payloads.clear()
    return stack


def alert(key: str, **extra) -> FileAlert:
    return FileAlert(
        file_type="seattle_weather",
        dag_id="ingest_seattle_weather",
        run_id="manual__1",
        status="FAILED",
        bucket=BUCKET,
        key=key,
        size_bytes=10,
        error_message=extra.pop("error_message", "prepare_file failed: FileUnusable: header does not match"),
        file_location=f"s3://{BUCKET}/quarantine/{key}",
        **extra,
    )


def subject_of(message) -> str:
    """The Subject header as a person reads it (RFC 2047 encoded words decoded)."""
    return str(make_header(decode_header(message["Subject"])))


def html_part(message) -> str:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/html"]
    return part.get_payload(decode=True).decode()


def test_a_line_feed_in_a_key_still_sends_the_email_on_one_subject_line(sinks, weather, settings, caplog):
    key = "landing/weather/été\r\nBcc: someone@example.org\n.csv"
    with caplog.at_level(logging.INFO, logger="redshift_ingest"):
        send_alert(alert(key), weather, settings, {})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "no channel failed"
    [mail] = sinks.smtp.messages
    subject = subject_of(mail)
    assert "\n" not in subject and "\r" not in subject
    shown_key = r"landing/weather/été\r\nBcc: someone@example.org\n.csv"
    assert subject == f"[FAILED] seattle_weather: s3://{BUCKET}/{shown_key}"
    assert mail["Bcc"] is None and mail["To"] == "weather-team@example.com"
    assert "someone@example.org" in html_part(mail)  # shown, escaped, in the body
    [slack] = sinks.slack.payloads
    assert slack["blocks"][0]["text"]["text"] == subject[:150]


def test_mentions_and_markup_in_a_key_ping_nobody_and_render_as_text(sinks, weather, settings):
    key = "landing/weather/<!channel> <@U024BE7LH> <https://evil.example|click> & <script>x</script>.csv"
    send_alert(alert(key, first_error="line 2, column a: <!here>"), weather, settings, {})
    [slack] = sinks.slack.payloads
    shown = slack["text"] + " ".join(f["text"] for b in slack["blocks"] if b["type"] == "section" for f in b["fields"])
    for raw in ("<!channel>", "<@U024BE7LH>", "<https://", "<!here>"):
        assert raw not in shown
    assert "&lt;!channel&gt; &lt;@U024BE7LH&gt;" in slack["text"] and "&amp;" in slack["text"]
    body = html_part(sinks.smtp.messages[0])
    assert "<script>" not in body and "&lt;script&gt;x&lt;/script&gt;" in body


def test_a_template_in_a_key_is_not_rendered(sinks, weather, settings):
    key = "landing/weather/{{ 7 * 7 }}{{ conn.smtp_default.password }}.csv"
    send_alert(alert(key), weather, settings, {})
    assert "{{ 7 * 7 }}" in subject_of(sinks.smtp.messages[0])
    assert "{{ 7 * 7 }}" in sinks.slack.payloads[0]["text"] and "49" not in sinks.slack.payloads[0]["text"]


def test_email_is_the_smtp_providers_notifier_message(sinks, weather, settings):
    """``SmtpNotifier`` builds a ``multipart/mixed`` HTML message with a Date header, sender from the connection."""
    send_alert(alert("landing/weather/x.csv"), weather, settings, {})
    [mail] = sinks.smtp.messages
    assert mail.get_content_type() == "multipart/mixed" and mail["Date"]
    assert mail["From"] == "airflow@example.com"
    assert "File is at" in html_part(mail) and "header does not match" in html_part(mail)


def test_one_alert_lists_every_file_of_a_run(sinks, weather, settings):
    lines = (
        FileLine("landing/weather/a.csv", "DONE", 10, 0, None, f"s3://{BUCKET}/archive/landing/weather/a.csv"),
        FileLine("landing/weather/b.csv", "DONE_WITH_REJECTS", 8, 2, "line 3, column wind: Invalid digit"),
        FileLine("landing/weather/<!channel>\n.csv", "FAILED", None, None, "header does not match"),
    )
    batch = BatchAlert("seattle_weather", "ingest_seattle_weather", "scheduled__2", lines, BUCKET, "http://x/run")
    assert batch.tally == "3 files: 1 DONE, 1 DONE_WITH_REJECTS, 1 FAILED"
    send_alert(batch, weather, settings, {})
    [mail] = sinks.smtp.messages
    assert subject_of(mail) == f"[seattle_weather] {batch.tally} in s3://{BUCKET} (run scheduled__2)"
    body = html_part(mail)
    assert body.count("<tr>") == 4 and "line 3, column wind: Invalid digit" in body and "&lt;!channel&gt;" in body
    [slack] = sinks.slack.payloads
    assert len([b for b in slack["blocks"] if b["type"] == "section"]) == 1 + 3
    assert "<!channel>" not in str(slack)
    text = batch.text().splitlines()
    assert (
        text[-1]
        == r"- landing/weather/<!channel>\n.csv: FAILED, - loaded, - rejected; first error: header does not match"
    )
    assert text[-2].startswith("- landing/weather/b.csv: DONE_WITH_REJECTS, 8 loaded, 2 rejected; first error: line 3")


def test_printable_escapes_control_characters_only():
    assert printable("a\nb\r\tc\x1b[31m\u2028 été 中") == r"a\nb\r\tc\x1b[31m\u2028 été 中"


def test_email_through_ses_when_the_connection_is_aws(sinks, weather, settings, monkeypatch):
    """``smtp_conn_id`` naming an ``aws`` connection sends with the Amazon provider's ``SesNotifier``
    (moto's SES API: it counts the messages it accepted from a verified sender)."""
    import boto3

    ses = boto3.client("ses", region_name="us-east-1")
    ses.verify_email_identity(EmailAddress="alerts@example.com")
    before = sum(p["DeliveryAttempts"] for p in ses.get_send_statistics()["SendDataPoints"])
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SES_ALERTS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1", "from_email": "alerts@example.com"},
            }
        ),
    )
    ses_settings = Settings.model_validate({**settings.model_dump(), "smtp_conn_id": "ses_alerts"})
    send_alert(alert("landing/weather/<b>ses</b>\n.csv"), weather, ses_settings, {})
    after = sum(p["DeliveryAttempts"] for p in ses.get_send_statistics()["SendDataPoints"])
    assert after > before  # moto counts its delivery attempts per destination it parsed
    assert not sinks.smtp.messages  # not through SMTP
