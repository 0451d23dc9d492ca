"""``register_health`` run for real (``dag.test()``): backlog and freshness alerts go out once per
incident, through the file type's Slack and email channels, and once more when resolved.

The register's times are moved back with UPDATEs (a file that waited two hours, a feed silent for a
day): the DAG reads the clock, so the data is aged instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from redshift_ingest import register
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.health import BACKLOG, SILENT, alert_state_table
from redshift_ingest.maintenance import build_health_dag
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"


def watched(**alerts) -> tuple[FileType, ...]:
    """seattle_weather with the given alerts (Slack and email on), and penguins without any."""
    base = {ft.name: ft for ft in default_file_types()}
    data = base["seattle_weather"].model_dump()
    data["alerts"] = {"slack": True, "email": ["ops@example.com"], **alerts}
    quiet = base["penguins"].model_dump()
    quiet["alerts"] = {"slack": True}
    return FileType.model_validate(data), FileType.model_validate(quiet)


def age(warehouse, file_id: str, by: timedelta) -> None:
    with warehouse.cursor() as cur:
        cur.execute(
            "UPDATE public.mng SET registered_at = %s WHERE file_id = %s",
            (datetime.now(UTC).replace(tzinfo=None) - by, file_id),
        )
    warehouse.commit()


def alerts_about(stack, status: str) -> list[dict]:
    return [p for p in stack.slack.payloads if p.get("text", "").startswith(f"[{status}] seattle_weather")]


@pytest.fixture
def clean_alert_state(warehouse, settings, landing):
    with warehouse.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {alert_state_table(settings).quoted}")
    warehouse.commit()


@pytest.mark.usefixtures("clean_alert_state")
def test_backlog_alert_once_per_incident_then_resolved(warehouse, settings, stack):
    file_types = watched(backlog_minutes=30)
    dag = build_health_dag(settings, file_types)
    obj = S3Object(BUCKET, "landing/weather/waiting.csv", 10, "etag-waiting")
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    stack.slack.payloads.clear()
    stack.smtp.messages.clear()

    dag.test()  # waited 0 min: no alert
    assert alerts_about(stack, BACKLOG) == []

    age(warehouse, obj.file_id, timedelta(hours=2))
    dag.test()  # waited 2 h > 30 min: one alert, naming the oldest file
    [alert] = alerts_about(stack, BACKLOG)
    assert "s3://example-landing-bucket/landing/weather/waiting.csv" in alert["text"]
    assert "1 NEW file(s) waiting; the oldest for 2 h 0 min (alerts.backlog_minutes: 30)" in alert["text"]
    assert any(m["Subject"].startswith("[BACKLOG] seattle_weather") for m in stack.smtp.messages)

    dag.test()  # still waiting: the incident is open, nothing new is sent
    assert len(alerts_about(stack, BACKLOG)) == 1

    register.claim_file(warehouse, settings, file_type="seattle_weather", selection="all", dag_id="d", run_id="r1")
    dag.test()  # nothing NEW any more: one resolution message
    [resolved] = alerts_about(stack, f"RESOLVED {BACKLOG}")
    assert "resolved after" in resolved["text"] and "alerts.backlog_minutes: 30" in resolved["text"]
    dag.test()
    assert len(alerts_about(stack, f"RESOLVED {BACKLOG}")) == 1
    # penguins has no backlog_minutes / expect_every: never alerted.
    assert not [p for p in stack.slack.payloads if "penguins" in p.get("text", "")]


@pytest.mark.usefixtures("clean_alert_state")
def test_silent_feed_alert_and_resolution_when_a_file_arrives(warehouse, settings, stack):
    file_types = watched(expect_every="6h")
    dag = build_health_dag(settings, file_types)
    old = S3Object(BUCKET, "landing/weather/yesterday.csv", 10, "etag-yesterday")
    register.register_object(warehouse, settings, old, "seattle_weather", "test")
    age(warehouse, old.file_id, timedelta(days=1))
    stack.slack.payloads.clear()

    dag.test()
    [alert] = alerts_about(stack, SILENT)
    assert "no file arrived for 24 h 0 min (alerts.expect_every: 6 h 0 min)" in alert["text"]
    assert "landing/weather/" in alert["text"]
    dag.test()
    assert len(alerts_about(stack, SILENT)) == 1  # once per incident

    fresh = S3Object(BUCKET, "landing/weather/today.csv", 10, "etag-today")
    register.register_object(warehouse, settings, fresh, "seattle_weather", "test")
    dag.test()
    assert len(alerts_about(stack, f"RESOLVED {SILENT}")) == 1
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT kind, resolved_at IS NOT NULL FROM {alert_state_table(settings).quoted}")
        assert cur.fetchall() == [(SILENT, True)]
    warehouse.rollback()


def test_expect_every_accepts_minutes_hours_days_only():
    from redshift_ingest.config import Alerts

    assert Alerts(expect_every="90m").expect_every == timedelta(minutes=90)
    assert Alerts(expect_every="1d").expect_every == timedelta(days=1)
    for bad in ("6 weeks", "PT2H", "0h", 6):
        with pytest.raises(ValueError, match="expected a duration like"):
            Alerts(expect_every=bad)
    with pytest.raises(ValueError):
        Alerts(backlog_minutes=0)
