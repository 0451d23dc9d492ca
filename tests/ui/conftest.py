"""Browser tests of the real Airflow UI (``make test-ui``): Airflow from ``devstack.airflow_local``, headless
Chromium (the Debian ``chromium`` package) driven by Playwright.

Collected only with ``RUN_UI_TESTS=1`` (``make test-ui`` sets it), so ``make test`` neither needs a
browser nor spends minutes starting Airflow. Screenshots of every step go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.services import free_port
from devstack.stack import REPO

if os.environ.get("RUN_UI_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]

ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# Seconds for `python -m devstack.airflow_local` to come up on a busy 2-core machine (UI_READY_TIMEOUT=
# raises it when other jobs share the cores: `airflow db migrate` alone took over 6 minutes at load 25).
READY_TIMEOUT = int(os.environ.get("UI_READY_TIMEOUT", "420"))


class LocalAirflow:
    """A running ``devstack.airflow_local``: what its ``stack.json`` says, plus small clients."""

    def __init__(self, state: dict) -> None:
        self.state = state
        self.ui = state["ui"]
        self.api = state["api"]
        self._token: str | None = None

    # --- warehouse (the Redshift stand-in) -------------------------------------------------------
    def warehouse(self):
        import psycopg2

        return psycopg2.connect(**self.state["redshift"])

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        conn = self.warehouse()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def register_row(self, file_id: str) -> dict:
        conn = self.warehouse()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT * FROM public.mng WHERE file_id = %s", (file_id,))
                row = cur.fetchone()
                assert row is not None, f"file {file_id} is not in the register"
                return dict(zip([d[0] for d in cur.description], row, strict=True))
        finally:
            conn.close()

    def slack_payloads(self) -> list[dict]:
        """What the Slack receiver got: its spool file, or the compose stack's receiver API."""
        if "slack_api" in self.state:
            with urllib.request.urlopen(self.state["slack_api"], timeout=10) as response:
                return json.loads(response.read())["messages"]
        return [json.loads(line) for line in Path(self.state["slack_spool"]).read_text().splitlines()]

    # --- S3 + the register_file Lambda handler ---------------------------------------------------
    def land(self, source: Path, key: str) -> str:
        """Upload ``source`` to the landing bucket and register it through the Lambda handler: its file_id."""
        from devstack.demo import DemoFile, land_and_register

        os.environ.update(self.state["s3_env"])
        registration_env = self.state["registration_env"]

        class _Stack:  # what land_and_register asks of the stack
            def registration_env(self) -> dict[str, str]:
                return registration_env

        [answer] = land_and_register(_Stack(), self.state["landing_bucket"], (DemoFile(source, key, "DONE"),))
        [registered] = answer["files"]
        assert registered["outcome"] == "registered", answer
        return registered["file_id"]

    # --- REST API (used to wait and cross-check only; the actions are done in the UI) -----------
    def get(self, path: str) -> dict:
        if self._token is None:
            request = urllib.request.Request(
                f"{self.api}/auth/token",
                data=json.dumps({"username": self.state["username"], "password": self.state["password"]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                self._token = json.loads(response.read())["access_token"]
        request = urllib.request.Request(f"{self.api}{path}", headers={"Authorization": f"Bearer {self._token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def local_airflow(tmp_path_factory, artifacts) -> Iterator[LocalAirflow]:
    """``python -m devstack.airflow_local`` on a free port in its own workdir, schedules off (only the
    runs the test triggers run), stopped with SIGTERM at the end.

    With ``UI_STACK=compose``: the running docker-compose stack instead (``make test-compose`` starts
    it with schedules off and stops it).
    """
    if os.environ.get("UI_STACK") == "compose":
        from tests.deploy.compose_stack import compose_state

        yield LocalAirflow(compose_state())
        return
    workdir = tmp_path_factory.mktemp("airflow-local")
    port = free_port()
    output = artifacts / "airflow_local.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.airflow_local",
                "--port",
                str(port),
                "--workdir",
                str(workdir),
                "--no-schedules",
                "--ready-timeout",
                str(READY_TIMEOUT - 30),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    state_file = workdir / "stack.json"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not state_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"devstack.airflow_local did not come up:\n{output.read_text(errors='replace')[-5000:]}")
            time.sleep(1)
        yield LocalAirflow(json.loads(state_file.read_text()))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        process_logs = workdir / "process-logs"
        if process_logs.exists():
            shutil.copytree(process_logs, artifacts / "process-logs", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def browser_context(artifacts):
    """Headless Chromium (a fresh profile) through Playwright; never ``playwright install``."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: run `make browser` (root: apt-get install chromium) or set CHROMIUM=")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        # UI_TIMEOUT_MS: more patience where the UI is served from containers on a busy machine.
        context.set_default_timeout(int(os.environ.get("UI_TIMEOUT_MS", "30000")))
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context, artifacts, request):
    """A page; on a failing test, its screenshot and HTML are kept as ``failure-<test>.*``."""
    page = browser_context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        name = request.node.name
        page.screenshot(path=str(artifacts / f"failure-{name}.png"), full_page=True)
        (artifacts / f"failure-{name}.html").write_text(page.content())
    page.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
