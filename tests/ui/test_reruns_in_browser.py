"""Reruns from the real Airflow UI, end to end, in headless Chromium.

1. Log in; open ``ingest_seattle_weather`` from the Dags list.
2. A good weather CSV lands and is registered: **Trigger Dag** with ``{"file_id": ...}`` as its
   configuration JSON ("Unpause on trigger" on) -> the run succeeds, the file is ``DONE`` with all its rows.
3. Someone changes the target table by hand (an extra column the files do not have). A second,
   correct file lands; triggered the same way, ``load_files`` fails in its COPY (Redshift error 1214,
   "Delimiter not found"): the file is ``FAILED`` and quarantined, and the alert goes out.
4. The table is fixed (the column dropped); the file is not touched.
5. In the UI, **Clear** the failed task ``load_files``: it takes
   its run's FAILED file back out of quarantine and loads it -> ``DONE``, attempt 2, history kept,
   every row in the target exactly once.
6. **Trigger Dag** with the first file's ``file_id`` and ``"force": true``: the DONE file is
   reloaded (back from the archive, COPY again) and its rows are replaced, not doubled.

Airflow's REST API is only used to cross-check states; every action is a click in the UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from devstack.stack import REPO

DAG_ID = "ingest_seattle_weather"
TARGET = "weather.daily_observations"
GOOD_FILE = REPO / "data/csv/seattle-weather.csv"  # 1,461 days, 2012-2015
GOOD_ROWS = 1461
SECOND_FILE_BODY = (
    "date,precipitation,temp_max,temp_min,wind,weather\n"
    "2016-01-01,0.0,5.6,-2.1,2.6,sun\n"
    "2016-01-02,4.3,6.7,1.7,3.1,drizzle\n"
    "2016-01-03,1.5,8.3,3.3,4.0,rain\n"
)
SECOND_ROWS = 3
RUN_TIMEOUT_SECONDS = 240


def shot(page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def login(page, ui: str, username: str, password: str) -> None:
    """Sign in, unless the browser's session (shared by the tests) is signed in already."""
    page.goto(ui + "/")
    page.wait_for_load_state("networkidle")
    if "/auth/login" not in page.url and page.get_by_label("Username").count() == 0:
        return
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def trigger_with_file_id(page, artifacts: Path, file_id: str, step: str, force: bool = False) -> str:
    """On the DAG page: Trigger -> Advanced Options -> Configuration JSON ``{"file_id": ...}`` (and
    ``"force": true``, pasted as a person would) -> Trigger. Returns the new run's id.

    The ingest DAGs declare no params (they would cost a third of every parse), so the form has no
    fields of its own: the request is the run's conf, entered in the form's JSON editor (Monaco)."""
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Advanced Options").click()
    editor = dialog.locator(".monaco-editor").last
    editor.wait_for()
    # Offered only while the DAG is paused: keep it on, so the triggered run is scheduled.
    unpause = dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")
    if unpause.count() and not unpause.is_checked():
        dialog.get_by_text(f"Unpause {DAG_ID} on trigger").click()
    wanted = {"file_id": file_id, **({"force": True} if force else {})}
    for _ in range(3):  # the editor applies input asynchronously: check what it holds, enter it again if wrong
        editor.click()
        page.keyboard.press("ControlOrMeta+A")
        page.keyboard.press("Backspace")
        page.keyboard.insert_text(json.dumps(wanted))  # one input event, as a paste: no auto-closed quotes
        page.wait_for_timeout(300)
        if _editor_json(editor) == wanted:
            break
    assert _editor_json(editor) == wanted, editor.locator(".view-lines").inner_text()
    dialog.get_by_text("Configuration JSON").click()  # leave the editor: the form takes the JSON on blur
    shot(page, artifacts, f"{step}-trigger-form")
    dialog.get_by_test_id("trigger-dag-submit").click()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/?]+"))
    match = re.search(rf"/dags/{DAG_ID}/runs/([^/?]+)", page.url)
    assert match, page.url
    return unquote(match.group(1))


def _editor_json(editor) -> object:
    """The JSON a Monaco editor shows (its rendered lines; None when it does not parse)."""
    # One JSON line, maybe wrapped on screen (wordWrap): the wraps are not in the text.
    text = editor.locator(".view-lines").inner_text().replace("\xa0", " ").replace("\n", "")
    try:
        return json.loads(text)
    except ValueError:
        return None


def wait_for_run_state(page, expected: str) -> None:
    """Watch the run page's header badge (the SPA refreshes it while the run is active)."""
    badge = page.get_by_test_id("header-card").get_by_test_id("state-badge").first
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    state = ""
    while time.monotonic() < deadline:
        try:
            state = badge.inner_text(timeout=10_000).strip()
        except PlaywrightTimeoutError:  # re-rendered while read, or a slow machine: read again
            with contextlib.suppress(PlaywrightTimeoutError):
                page.reload(wait_until="commit")
            continue
        if state in ("Success", "Failed"):
            break
        page.wait_for_timeout(1000)
    assert state == expected, f"run ended {state!r} (or timed out), expected {expected!r}"


def task_state_in_run_table(page, task_id: str) -> str:
    row = page.get_by_test_id("table-list").locator("tr", has=page.locator(f"a[href$='/tasks/{task_id}']"))
    return row.get_by_test_id("state-badge").inner_text().strip()


def settle(page) -> None:
    """Reload once the run is final, so the task table and grid show the final states."""
    page.wait_for_timeout(2000)
    page.reload()
    page.wait_for_load_state("networkidle")


@pytest.mark.timeout(1200)
def test_trigger_fail_fix_and_clear_the_run_in_the_ui(local_airflow, page, artifacts, tmp_path):
    af = local_airflow
    files = {}
    # The tests share one stack: start from the table the file type's DDL makes (the run creates it).
    af.sql(f"DROP TABLE IF EXISTS {TARGET}")

    # 1. Log in, find the DAG in the list.
    login(page, af.ui, af.state["username"], af.state["password"])
    shot(page, artifacts, "01-home")
    page.get_by_test_id("nav-dags-link").click()
    page.locator(f"a[href='/dags/{DAG_ID}']").first.click()
    page.wait_for_url(f"**/dags/{DAG_ID}")
    page.get_by_test_id("header-card").wait_for()
    shot(page, artifacts, "02-dag-page")

    # 2. A good file: Trigger w/ config file_id -> success, DONE.
    files["good"] = af.land(GOOD_FILE, "landing/weather/seattle-weather-2012-2015.csv")
    run_good = trigger_with_file_id(page, artifacts, files["good"], "03")
    wait_for_run_state(page, "Success")
    settle(page)
    shot(page, artifacts, "04-first-run-success")
    assert af.get(f"/api/v2/dags/{DAG_ID}")["is_paused"] is False  # unpaused by the trigger form
    run = af.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_good}")
    assert run["state"] == "success" and run["conf"] == {"file_id": files["good"]}
    good = af.register_row(files["good"])
    assert (good["status"], good["rows_loaded"], good["dag_id"]) == ("DONE", GOOD_ROWS, DAG_ID)
    assert good["run_id"] == run_good

    # 3. The target table is changed by hand; a correct second file fails in load_files' COPY.
    af.sql(f"ALTER TABLE {TARGET} ADD COLUMN station varchar(16)")
    second = tmp_path / "2016-01.csv"
    second.write_text(SECOND_FILE_BODY)
    files["second"] = af.land(second, "landing/weather/2016-01.csv")
    page.goto(f"{af.ui}/dags/{DAG_ID}")
    run_second = trigger_with_file_id(page, artifacts, files["second"], "05")
    wait_for_run_state(page, "Failed")
    settle(page)
    shot(page, artifacts, "06-second-run-failed")
    assert task_state_in_run_table(page, "load_files") == "Failed"
    failed = af.register_row(files["second"])
    assert failed["status"] == "FAILED"
    assert failed["quarantine_key"] == "quarantine/landing/weather/2016-01.csv"
    assert "Delimiter not found" in failed["first_error"]
    assert failed["error_message"].startswith("line ") and "Delimiter not found" in failed["error_message"]
    slack = af.slack_payloads()
    assert any("2016-01.csv" in p.get("text", "") for p in slack), slack

    # 4. The fix is in the table, not in the file.
    af.sql(f"ALTER TABLE {TARGET} DROP COLUMN station")

    # 5. Clear the failed task in the UI: load_files takes its run's FAILED file back out of
    #    quarantine and loads it.
    page.goto(f"{af.ui}/dags/{DAG_ID}/runs/{run_second}/tasks/load_files")
    page.get_by_test_id("header-card").get_by_role("button", name="Press shift+c to clear").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Affected Tasks").wait_for()
    shot(page, artifacts, "07-clear-task-dialog")
    dialog.get_by_role("button", name="Confirm").click()
    dialog.wait_for(state="hidden")
    page.goto(f"{af.ui}/dags/{DAG_ID}/runs/{run_second}")
    wait_for_run_state(page, "Success")
    settle(page)
    cleared = shot(page, artifacts, "08-cleared-run-success")
    assert task_state_in_run_table(page, "load_files") == "Success"
    assert af.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_second}")["state"] == "success"

    done = af.register_row(files["second"])
    assert (done["status"], done["rows_loaded"], done["attempts"]) == ("DONE", SECOND_ROWS, 2)
    assert done["archive_key"] == "archive/landing/weather/2016-01.csv" and done["quarantine_key"] is None
    assert "attempt 1 FAILED" in done["history"] and "Delimiter not found" in done["history"]
    [(total, distinct_days)] = af.sql(f"SELECT count(*), count(DISTINCT date) FROM {TARGET}")
    assert (total, distinct_days) == (GOOD_ROWS + SECOND_ROWS, GOOD_ROWS + SECOND_ROWS)  # no duplicates

    # The DAG's grid: the first run, and the failed run now green after the clear.
    page.goto(f"{af.ui}/dags/{DAG_ID}")
    page.get_by_test_id("header-card").wait_for()
    settle(page)
    shot(page, artifacts, "09-dag-grid-after-rerun")

    # 6. Reload the first (DONE) file with force: its rows are replaced, not doubled.
    before = af.register_row(files["good"])
    run_forced = trigger_with_file_id(page, artifacts, files["good"], "10", force=True)
    wait_for_run_state(page, "Success")
    settle(page)
    shot(page, artifacts, "11-forced-reload-success")
    assert af.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_forced}")["conf"] == {"file_id": files["good"], "force": True}
    forced = af.register_row(files["good"])
    assert (forced["status"], forced["rows_loaded"], forced["run_id"]) == ("DONE", GOOD_ROWS, run_forced)
    assert forced["copy_query_id"] != before["copy_query_id"] and "(forced reload" in forced["history"]
    [(total, distinct_days)] = af.sql(f"SELECT count(*), count(DISTINCT date) FROM {TARGET}")
    assert (total, distinct_days) == (GOOD_ROWS + SECOND_ROWS, GOOD_ROWS + SECOND_ROWS)  # replaced, not doubled

    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":  # the README's picture: grid + the cleared run
        (REPO / "docs/img").mkdir(exist_ok=True)
        shutil.copyfile(cleared, REPO / "docs/img/airflow-rerun.png")
