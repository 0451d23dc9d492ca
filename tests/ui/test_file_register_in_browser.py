"""The File register view inside the real Airflow UI, in headless Chromium.

1. The weather table was changed by hand (an extra column the files do not have). A correct file
   lands and its run (Trigger Dag with ``file_id``) fails in ``load_files`` (its COPY): FAILED, quarantined.
2. Browse -> **File register** (the plugin's view, inside the Airflow UI): the backlog table, the
   file list filtered to FAILED; the file's page shows its first error and its quarantine location.
3. The table is fixed. **Replay** on the file's page: a run of ``ingest_seattle_weather`` with
   ``{"file_id": ..., "force": false}`` loads it; the page shows it DONE with its rows and history.
4. **Force reload** on the same page: a new COPY replaces its rows (not doubled).

Every action is a click in the UI; the register and the REST API are read only to cross-check.
Screenshots of each step in ``test-artifacts/ui/register-*.png``.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
from test_reruns_in_browser import login, shot, trigger_with_file_id, wait_for_run_state

from devstack.stack import REPO
from redshift_ingest.config import default_file_types
from redshift_ingest.sql import render

DAG_ID = "ingest_seattle_weather"
TARGET = "weather.daily_observations"
BODY = (
    "date,precipitation,temp_max,temp_min,wind,weather\n"
    "2017-03-01,0.0,9.4,2.2,3.1,sun\n"
    "2017-03-02,2.3,8.9,3.9,4.4,rain\n"
)
ROWS = 2
KEY = "landing/weather/2017-03.csv"
STATUS_TIMEOUT_SECONDS = 300


def register_frame(page):
    """The File register view's iframe inside the Airflow UI page."""
    return page.frame_locator("iframe").first


def wait_for_file_status(page, expected: str) -> None:
    """Reload the file's page in the view until its status badge says ``expected``."""
    deadline = time.monotonic() + STATUS_TIMEOUT_SECONDS
    status = ""
    while time.monotonic() < deadline:
        frame = register_frame(page)
        status = frame.get_by_test_id("file-status").inner_text().strip()
        if status == expected:
            return
        page.wait_for_timeout(3000)
        frame.locator("body").evaluate("() => window.location.reload()")
        frame.get_by_test_id("file-status").wait_for()
    raise AssertionError(f"the file stayed {status!r}, expected {expected!r}")


@pytest.mark.timeout(2700)
def test_find_a_failed_file_read_its_error_replay_it_and_see_it_done(local_airflow, page, artifacts, tmp_path):
    af = local_airflow

    # 1. The table changed by hand; a correct file fails in load_files' COPY.
    weather = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    af.sql("CREATE SCHEMA IF NOT EXISTS weather")
    af.sql(render(weather.target.ddl, target=weather.target.table.quoted))
    af.sql(f"ALTER TABLE {TARGET} ADD COLUMN station varchar(16)")
    source = tmp_path / "2017-03.csv"
    source.write_text(BODY)
    file_id = af.land(source, KEY)
    login(page, af.ui, af.state["username"], af.state["password"])
    page.goto(f"{af.ui}/dags/{DAG_ID}")
    page.get_by_test_id("header-card").wait_for()
    trigger_with_file_id(page, artifacts, file_id, "register-01")
    wait_for_run_state(page, "Failed")
    assert af.register_row(file_id)["status"] == "FAILED"

    # 2. The File register view, in the Airflow UI: find the failed file and read its error.
    page.goto(f"{af.ui}/plugin/file_register")
    frame = register_frame(page)
    frame.get_by_test_id("backlog").wait_for()
    assert frame.locator("[data-testid=backlog] tr[data-file-type=seattle_weather]").count() == 1
    shot(page, artifacts, "register-02-view")
    filters = frame.get_by_test_id("filters")
    filters.locator("select[name=status]").select_option("FAILED")
    filters.locator("select[name=file_type]").select_option("seattle_weather")
    filters.get_by_role("button", name="Filter").click()
    row = frame.locator(f"[data-testid=files] tr[data-file-id='{file_id}']")
    row.wait_for()
    assert "FAILED" in row.inner_text() and "Delimiter not found" in row.inner_text()
    shot(page, artifacts, "register-03-failed-files")
    row.get_by_role("link", name=KEY).click()
    frame.get_by_test_id("first-error").wait_for()
    assert "Delimiter not found" in frame.get_by_test_id("first-error").inner_text()
    assert (
        frame.get_by_test_id("location-quarantine").inner_text()
        == f"s3://{af.state['landing_bucket']}/quarantine/{KEY}"
    )
    assert frame.get_by_test_id("run-link").inner_text().startswith(f"{DAG_ID} / ")
    failed_page = shot(page, artifacts, "register-04-failed-file")

    # 3. Fix the table, then Replay from the view: DONE, attempt 2, history kept.
    af.sql(f"ALTER TABLE {TARGET} DROP COLUMN station")
    frame.get_by_test_id("replay-button").click()
    message = frame.get_by_test_id("register-message")
    message.wait_for()
    assert message.inner_text().startswith(f"Replay triggered: {DAG_ID} run file_register__")
    shot(page, artifacts, "register-05-replay-triggered")
    wait_for_file_status(page, "DONE")
    assert frame.get_by_test_id("rows-loaded").inner_text() == str(ROWS)
    assert "attempt 1 FAILED" in frame.get_by_test_id("history").inner_text()
    done_page = shot(page, artifacts, "register-06-replayed-done")
    done = af.register_row(file_id)
    assert (done["status"], done["rows_loaded"], done["attempts"]) == ("DONE", ROWS, 2)
    run = af.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{done['run_id']}")
    assert run["conf"] == {"file_id": file_id, "force": False} and run["state"] == "success"

    # 4. Force reload from the view: a new COPY, the rows replaced, not doubled.
    frame.get_by_test_id("force-reload-button").click()
    frame.get_by_test_id("register-message").wait_for()
    reloaded_run = done["run_id"]
    deadline = time.monotonic() + STATUS_TIMEOUT_SECONDS
    while af.register_row(file_id)["run_id"] == reloaded_run or af.register_row(file_id)["status"] != "DONE":
        assert time.monotonic() < deadline, "the forced reload did not finish"
        page.wait_for_timeout(3000)
    wait_for_file_status(page, "DONE")
    shot(page, artifacts, "register-07-forced-reload-done")
    forced = af.register_row(file_id)
    assert forced["copy_query_id"] != done["copy_query_id"] and "(forced reload" in forced["history"]
    [(total,)] = af.sql(f"SELECT count(*) FROM {TARGET} WHERE ingest_file_id = %s", (file_id,))
    assert total == ROWS

    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":  # the README's pictures of the view
        (REPO / "docs/img").mkdir(exist_ok=True)
        shutil.copyfile(failed_page, REPO / "docs/img/file-register-failed.png")
        shutil.copyfile(done_page, REPO / "docs/img/file-register-done.png")
