"""The File register view's app (``redshift_ingest.register_app``) over the real register, Airflow's
real auth manager (SimpleAuthManager: an admin and a viewer, their real JWTs) and the real metadata
database: reading files and their errors, replay / force reload / bulk replay as DAG runs with
``{"file_id", "force"}``, and what a viewer may not do. The browser test (tests/ui) does the same
clicks in the real Airflow UI."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from redshift_ingest import register, register_view
from redshift_ingest.config import default_file_types
from redshift_ingest.dag_factory import build_dag
from redshift_ingest.maintenance import build_health_dag
from redshift_ingest.register import S3Object
from redshift_ingest.register_app import create_app
from redshift_ingest.register_view import FileFilter
from tests.e2e import test_replay
from tests.e2e.test_replay import KEY, weather

BUCKET = "example-landing-bucket"
failed_file = test_replay.failed_file  # the fixture: a weather file FAILED by a real run, quarantined
AUTH_ENV = {
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
    "AIRFLOW__API_AUTH__JWT_SECRET": "register-view-test-secret-" + "0123456789abcdef" * 3,
}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    """JWTs of an admin and a viewer, minted by Airflow's SimpleAuthManager."""
    saved = {key: os.environ.get(key) for key in [*AUTH_ENV, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]}
    os.environ.update(AUTH_ENV)
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(
        tmp_path_factory.mktemp("auth") / "passwords.json"
    )
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = init_auth_manager()
    yield {name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=name)) for name in ("admin", "viewer")}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def client(tokens, settings, stack):
    """The app as the admin (the UI's session cookie), its file types those of the replay tests."""
    file_types = tuple(weather(5) if ft.name == "seattle_weather" else ft for ft in default_file_types())
    with TestClient(create_app(settings, file_types), cookies={"_token": tokens["admin"]}) as http:
        yield http


def dag_run(dag_id: str, run_id: str):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
        session.expunge(run)
        return run


def failed_row(warehouse, settings, key: str, error: str) -> str:
    """A FAILED file made by the register's own transitions (register, claim, mark_failed)."""
    obj = S3Object(BUCKET, key, 10, "etag-" + key)
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    register.claim_file(
        warehouse,
        settings,
        file_type="seattle_weather",
        selection="all",
        dag_id="d",
        run_id="r-" + key,
        file_id=obj.file_id,
    )
    register.mark_failed(warehouse, settings, obj.file_id, "r-" + key, error)
    return obj.file_id


def test_find_a_failed_file_read_its_error_replay_it_and_see_it_done(
    client, failed_file, warehouse, settings, tokens, landing
):
    # The list, filtered to FAILED seattle_weather files, has it with its first error.
    page = client.get("/", params={"file_type": "seattle_weather", "status": "FAILED"})
    assert page.status_code == 200
    assert KEY in page.text and "line 3, column precipitation" in page.text
    [listed] = client.get("/api/files", params={"status": "FAILED", "key": "one-bad"}).json()
    assert listed["file_id"] == failed_file and listed["rows_rejected"] == 1

    # Its page: the error, where the file and the error report are, the run that failed it.
    detail = client.get(f"/api/files/{failed_file}").json()
    assert detail["locations"]["quarantine"] == f"s3://{BUCKET}/quarantine/{KEY}"
    assert detail["locations"]["error_report"] == f"s3://{BUCKET}/quarantine/{KEY}.load_errors.csv"
    assert detail["run_path"] == f"/dags/ingest_seattle_weather/runs/{quote(detail['run_id'], safe='')}"
    html = client.get(f"/files/{failed_file}").text
    assert 'data-testid="replay-button"' in html and "force-reload-button" not in html

    # A viewer may read, not replay; nobody without a token may do either.
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get(f"/api/files/{failed_file}", headers=viewer).status_code == 200
    assert client.post(f"/api/files/{failed_file}/replay", headers=viewer, json={}).status_code == 403
    client.cookies.clear()
    assert client.get("/api/files").status_code == 401
    client.cookies.set("_token", tokens["admin"])

    # Replay (the form, as the page posts it): a run of ingest_seattle_weather with the file_id param.
    answer = client.post(f"/files/{failed_file}/replay", data={"unpause": "true"}, follow_redirects=False)
    assert answer.status_code == 303
    answer = client.get(answer.headers["location"])
    assert "Replay triggered: ingest_seattle_weather run file_register__" in answer.text
    run_id = answer.text.split("run file_register__")[1].split(".")[0]
    run = dag_run("ingest_seattle_weather", f"file_register__{run_id}")
    assert run.conf == {"file_id": failed_file, "force": False}
    assert run.state == "queued" and run.triggering_user_name == "admin"

    # What the scheduler then runs: the same DAG with that conf -> loaded (with its one reject).
    build_dag(weather(5), settings).test(run_conf=run.conf)
    done = client.get(f"/api/files/{failed_file}").json()
    assert (done["status"], done["rows_loaded"], done["attempts"]) == ("DONE_WITH_REJECTS", 2, 2)
    assert any("attempt 1 FAILED" in line for line in done["history_lines"])

    # A loaded file is not replayed; it is force-reloaded.
    again = client.post(f"/api/files/{failed_file}/replay", json={})
    assert again.status_code == 409 and "only FAILED files are replayed (use force reload)" in again.text
    assert 'data-testid="force-reload-button"' in client.get(f"/files/{failed_file}").text
    forced = client.post(f"/api/files/{failed_file}/replay", json={"force": True})
    assert forced.status_code == 201
    assert dag_run("ingest_seattle_weather", forced.json()["run_id"]).conf == {"file_id": failed_file, "force": True}


def test_bulk_replay_triggers_one_run_per_failed_file_in_the_range(client, warehouse, settings, landing, stack):
    first = failed_row(warehouse, settings, "landing/weather/bulk-1.csv", "COPY failed: 1214")
    second = failed_row(warehouse, settings, "landing/weather/bulk-2.csv", "COPY failed: 1214")
    outside = failed_row(warehouse, settings, "landing/weather/bulk-old.csv", "COPY failed: 1214")
    with warehouse.cursor() as cur:
        cur.execute(
            "UPDATE public.mng SET registered_at = registered_at - interval '3 days' WHERE file_id = %s", (outside,)
        )
    warehouse.commit()
    # Any dag.test() writes the DAGs folder's DAGs (ingest_seattle_weather too) to the metadata database.
    build_health_dag(settings, default_file_types()).test()
    now = datetime.now(UTC).replace(tzinfo=None)
    since, until = (now - timedelta(days=1)).isoformat(), (now + timedelta(minutes=1)).isoformat()

    answer = client.post("/api/bulk-replay", json={"file_type": "seattle_weather", "since": since, "until": until})
    assert answer.status_code == 201, answer.text
    runs = answer.json()["runs"]
    assert sorted(r["file_id"] for r in runs) == sorted([first, second])
    for run in runs:
        assert dag_run("ingest_seattle_weather", run["run_id"]).conf == {"file_id": run["file_id"], "force": False}

    refused = client.post("/api/bulk-replay", json={"file_type": "nope", "since": since, "until": until})
    assert refused.status_code == 409 and "unknown file type 'nope'" in refused.text


def test_filters_backlog_and_unknown_columns(warehouse, settings, landing, file_types):
    for key in ("landing/weather/a-2016.csv", "landing/weather/b-2017.csv"):
        register.register_object(warehouse, settings, S3Object(BUCKET, key, 5, "e-" + key), "seattle_weather", "t")
    register.register_object(warehouse, settings, S3Object(BUCKET, "landing/odd/x.bin", 1, "e"), None, "t")
    failed_row(warehouse, settings, "landing/weather/c-bad.csv", "boom")
    now = datetime.now(UTC).replace(tzinfo=None)

    def keys(**filters) -> list[str]:
        return [r["s3_key"] for r in register_view.list_files(warehouse, settings, FileFilter(**filters))]

    assert keys(status="NEW") == ["landing/weather/b-2017.csv", "landing/weather/a-2016.csv"]
    assert keys(key_contains="2016") == ["landing/weather/a-2016.csv"]
    assert keys(key_contains="%") == []  # a piece of the key, not a LIKE pattern
    assert keys(status="UNMATCHED") == ["landing/odd/x.bin"]
    assert keys(file_type="seattle_weather", status="FAILED") == ["landing/weather/c-bad.csv"]
    assert keys(until=now - timedelta(hours=1)) == []
    assert len(keys(since=now - timedelta(hours=1))) == 4
    with pytest.raises(ValueError, match="unknown status"):
        FileFilter(status="LOST")

    [weather_backlog] = [
        b for b in register_view.backlog(warehouse, settings, file_types, now) if b["file_type"] == "seattle_weather"
    ]
    assert (weather_backlog["new_files"], weather_backlog["failed_files"]) == (2, 1)
    assert 0 <= weather_backlog["oldest_new_age_seconds"] < 600

    # A column the register gains later (the lead's batch_id) is shown, never required.
    with warehouse.cursor() as cur:
        cur.execute("ALTER TABLE public.mng ADD COLUMN batch_id VARCHAR(64)")
        cur.execute("UPDATE public.mng SET batch_id = 'b-1'")
    warehouse.commit()
    try:
        [row] = register_view.list_files(warehouse, settings, FileFilter(key_contains="a-2016"))
        assert row["batch_id"] == "b-1"
        assert register_view.file_detail(warehouse, settings, row["file_id"])["batch_id"] == "b-1"
    finally:
        with warehouse.cursor() as cur:
            cur.execute("ALTER TABLE public.mng DROP COLUMN batch_id")
        warehouse.commit()
