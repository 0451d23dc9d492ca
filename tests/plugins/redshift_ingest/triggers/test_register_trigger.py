"""The wait for a NEW file: the trigger polling the real register (Redshift stand-in over PostgreSQL),
one shared query and session for every waiting file type, errors reported rather than crashing,
and a real ``dag.test()`` whose sensor creates a missing register, defers, and resumes on a file."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from redshift_ingest import register
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.dag_factory import build_dag
from redshift_ingest.register import S3Object
from redshift_ingest.sensors import RegisterUnavailable
from redshift_ingest.triggers.register_trigger import NewFileTrigger, RegisterPoller

BUCKET = "example-landing-bucket"
POLL_QUERY = "GROUP BY file_type"


def trigger(file_type: str, settings, **kwargs) -> NewFileTrigger:
    return NewFileTrigger(
        conn_id=settings.warehouse_conn_id, register_table=str(settings.register_table), file_type=file_type, **kwargs
    )


def register_file(warehouse, settings, key: str, file_type: str) -> S3Object:
    obj = S3Object(BUCKET, key, 10, f"etag-{key}-{time.time_ns()}")
    assert register.register_object(warehouse, settings, obj, file_type, "test")
    return obj


def poller_sessions(conn) -> int:
    """Sessions of the warehouse's PostgreSQL that last ran the trigger's query."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{POLL_QUERY}%",),
        )
        (count,) = cur.fetchone()
    conn.rollback()
    return count


def test_serializes_to_its_importable_classpath(settings):
    classpath, kwargs = trigger("tweets", settings, poll_interval=2, deadline=time.time() + 60).serialize()
    assert classpath == "redshift_ingest.triggers.register_trigger.NewFileTrigger"
    assert NewFileTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_fires_when_a_file_of_its_type_is_registered(landing, warehouse, settings):
    async def scenario():
        waiting = [
            asyncio.create_task(anext(trigger(f"type_{n}", settings, poll_interval=0.2).run())) for n in range(20)
        ]
        tweets = asyncio.create_task(anext(trigger("tweets", settings, poll_interval=0.2).run()))
        await asyncio.sleep(1.0)
        assert not tweets.done() and not any(t.done() for t in waiting)
        # Twenty-one waiting file types, one poller: one session, one query per poll.
        sessions = await asyncio.to_thread(poller_sessions, warehouse)
        # A file of another type does not wake it; one of its type does.
        await asyncio.to_thread(register_file, warehouse, settings, "landing/languages/a.csv", "languages")
        await asyncio.sleep(0.6)
        assert not tweets.done()
        await asyncio.to_thread(register_file, warehouse, settings, "landing/tweets/a.jsonl", "tweets")
        event = await asyncio.wait_for(tweets, timeout=10)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        return sessions, event

    sessions, event = asyncio.run(scenario())
    assert sessions == 1
    assert event.payload == {"status": "found", "file_type": "tweets", "new_files": 1}
    assert RegisterPoller._pollers == {}, "the last trigger out stops the poller"


def test_ends_the_task_from_the_triggerer_when_asked(landing, warehouse, settings):
    """The sensor's trigger ends the wait itself (TaskSuccessEvent): no worker resumes the task."""
    from airflow.triggers.base import TaskSuccessEvent
    from airflow.utils.state import TaskInstanceState

    async def scenario():
        waiting = asyncio.create_task(
            anext(trigger("tweets", settings, poll_interval=0.2, end_from_trigger=True).run())
        )
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await asyncio.to_thread(register_file, warehouse, settings, "landing/tweets/b.jsonl", "tweets")
        return await asyncio.wait_for(waiting, timeout=10)

    event = asyncio.run(scenario())
    assert isinstance(event, TaskSuccessEvent) and event.task_instance_state == TaskInstanceState.SUCCESS


def test_an_unreachable_register_ends_in_an_error_event(monkeypatch, settings, stack):
    # A real connection to a port nothing listens on: psycopg2 fails to connect, as on an outage.
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_DOWN", "postgres://u:p@127.0.0.1:9/dev?connect_timeout=2")
    waiting = NewFileTrigger("warehouse_down", "public.mng", "tweets", poll_interval=0.1, error_tolerance_seconds=0.5)

    event = asyncio.run(asyncio.wait_for(anext(waiting.run()), timeout=30))

    assert event.payload["status"] == "error" and "OperationalError" in event.payload["message"]
    sensor = build_dag(next(iter(default_file_types())), settings).get_task("wait_for_new_file")
    # Not an AirflowException: resume_execution does not turn it into a skip (soft_fail); the task retries.
    with pytest.raises(RegisterUnavailable, match="OperationalError"):
        sensor.execute_complete({}, event.payload)
    assert sensor.retries >= 1


def _weather() -> FileType:
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    data = base.model_dump()
    data["target"] = {**data["target"], "table": "weather.deferred"}
    # Bounded, so that a file that never comes ends the run (skipped) instead of hanging the test.
    data["sensor"] = {"poke_interval_seconds": 1, "timeout_seconds": 1200}
    return FileType.model_validate(data)


def test_a_fresh_warehouse_run_creates_the_register_defers_and_loads_the_next_file(landing, warehouse, settings):
    """``dag.test()`` runs the trigger in line: the sensor finds no register (first start), creates it,
    defers; the file registered meanwhile wakes it and the run loads the file."""
    with warehouse.cursor() as cur:
        cur.execute(f"DROP TABLE {settings.register_table.quoted}")
    warehouse.commit()
    key = "landing/weather/deferred.csv"
    landing.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=b"date,precipitation,temp_max,temp_min,wind,weather\n2012-01-01,0.0,12.8,5.0,4.7,drizzle\n",
    )
    head = landing.head_object(Bucket=BUCKET, Key=key)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
    seen: dict[str, object] = {}

    def land_when_waiting() -> None:
        from redshift_ingest.hooks.warehouse import WarehouseHook

        conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
        try:
            deadline = time.monotonic() + 900  # the run may take minutes to reach its wait on a busy machine
            while time.monotonic() < deadline and not poller_sessions(conn):
                time.sleep(0.2)
            seen["trigger_polling"] = bool(poller_sessions(conn))
            seen["registered"] = register.register_object(conn, settings, obj, "seattle_weather", "test")
        finally:
            conn.close()

    helper = threading.Thread(target=land_when_waiting, daemon=True)
    helper.start()
    run = build_dag(_weather(), settings).test()
    helper.join(timeout=5)

    assert seen == {"trigger_polling": True, "registered": True}
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["wait_for_new_file"] == "success" and states["load_files"] == "success", states
    assert register.get_file(warehouse, settings, obj.file_id)["status"] == "DONE"
    warehouse.rollback()


def test_a_fresh_warehouse_with_no_file_ends_skipped_not_failed(landing, warehouse, settings):
    """First start: no register, no file. The run creates the register, waits its (short) timeout in
    the trigger and ends with the wait skipped; nothing fails."""
    with warehouse.cursor() as cur:
        cur.execute(f"DROP TABLE {settings.register_table.quoted}")
    warehouse.commit()
    data = _weather().model_dump()
    data["sensor"] = {"poke_interval_seconds": 1, "timeout_seconds": 10}

    run = build_dag(FileType.model_validate(data), settings).test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["wait_for_new_file"] == "skipped", states
    assert "failed" not in states.values() and run.state == "success"
    assert register.get_file(warehouse, settings, "0" * 64) is None  # the register exists, empty
    warehouse.rollback()


def test_the_sensor_is_deferrable_by_default(settings):
    sensor = build_dag(next(iter(default_file_types())), settings).get_task("wait_for_new_file")
    assert sensor.deferrable and sensor.poll_interval == 2 and sensor.timeout == 24 * 3600
