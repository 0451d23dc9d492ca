"""Every ingest run says what it loaded in its note: a real run of the weather DAG (two files, one
bad) sets its note through Airflow's real REST API (Airflow's own FastAPI app served by uvicorn,
its SimpleAuthManager issuing the token), and the note is read back from that API."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request

import pytest

from redshift_ingest import register, run_notes
from redshift_ingest.dag_factory import build_dag
from redshift_ingest.register import S3Object
from tests.e2e.test_replay import BODY, weather

BUCKET = "example-landing-bucket"
GOOD = (
    b"date,precipitation,temp_max,temp_min,wind,weather\n"
    b"2013-01-01,0.0,5.0,0.0,2.8,sun\n"
    b"2013-01-02,0.0,6.1,-1.1,3.1,sun\n"
)
PASSWORD = "notes-test-password"
ENV = {
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    "AIRFLOW__API_AUTH__JWT_SECRET": "run-notes-test-secret-" + "0123456789abcdef" * 3,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, *, token: str | None = None, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def api_server(stack, tmp_path_factory):
    """Airflow's REST API (``airflow.api_fastapi.app.create_app``) on a free port, and the
    ``airflow_api`` connection the DAGs use to set their runs' notes."""
    import uvicorn

    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}))
    env = {**ENV, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)}
    port = _free_port()
    env["AIRFLOW_CONN_AIRFLOW_API"] = json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{port}", "login": "admin", "password": PASSWORD}
    )
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    from airflow.api_fastapi.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the Airflow API server did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_the_run_note_lists_its_files_and_their_outcome(api_server, landing, warehouse, settings):
    ids = {}
    for key, body in (("landing/weather/notes-good.csv", GOOD), ("landing/weather/notes-bad.csv", BODY)):
        landing.put_object(Bucket=BUCKET, Key=key, Body=body)
        head = landing.head_object(Bucket=BUCKET, Key=key)
        obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
        register.register_object(warehouse, settings, obj, "seattle_weather", "test")
        ids[key] = obj.file_id

    dag = build_dag(weather(max_error=0), settings)
    run = dag.test()

    token = _call(f"{api_server}/auth/token", body={"username": "admin", "password": PASSWORD})["access_token"]
    found = _call(f"{api_server}/api/v2/dags/{dag.dag_id}/dagRuns/{run.run_id}", token=token)
    note = found["note"]
    assert note.startswith("2 files, "), note
    assert "2 rows loaded, 1 rejected: 1 DONE, 1 FAILED" in note
    assert f"DONE landing/weather/notes-good.csv {len(GOOD)} B {ids['landing/weather/notes-good.csv'][:12]}" in note
    assert "FAILED landing/weather/notes-bad.csv" in note and "line 3, column precipitation" in note


def test_a_key_with_a_line_feed_stays_on_its_line_and_the_note_fits_the_api():
    rows = [
        {
            "file_id": f"{n:032x}",
            "s3_key": f"landing/x/evil\n{n}.csv",
            "status": "DONE",
            "size_bytes": 1500,
            "rows_loaded": 3,
            "rows_rejected": 0,
        }
        for n in range(200)
    ]
    note = run_notes.run_note(rows)
    assert len(note) <= run_notes.MAX_NOTE_CHARS
    lines = note.splitlines()
    assert lines[0] == "200 files, 300.0 kB, 600 rows loaded, 0 rejected: 200 DONE"
    assert lines[1] == f"DONE landing/x/evil\\x0a0.csv 1.5 kB {0:012x} 3 rows, 0 rejected"
    assert lines[-1] == "and 195 more"


def test_without_the_connection_no_note_is_set_and_nothing_fails(stack):
    assert run_notes.set_run_note("any_dag", "any_run", "note", conn_id="no_such_connection") is False
