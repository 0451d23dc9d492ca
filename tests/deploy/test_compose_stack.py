"""The docker-compose stack for real (``make test-compose``): a file loads under the stack's own Airflow.

Runs only with ``RUN_COMPOSE_TESTS=1`` against a stack that ``make test-compose`` (``docker/stack.sh up``)
has started and stops afterwards. From the host, through the published ports only:

1. every long-running service is healthy (the engine's health checks);
2. the DAGs parsed in the dag-processor container, without import errors;
3. a real file (TICKIT ``category``) and a real bad file (csvkit's ``bad.csv`` in the weather folder)
   land in the S3 stand-in and are registered through the register_file Lambda handler;
4. their DAGs are unpaused and triggered with ``file_id`` through Airflow's REST API, so the test does
   not depend on the DAGs' schedules; the stack's scheduler runs them (LocalExecutor);
5. the register (``mng``, read through the Redshift stand-in's port) says DONE with 11 rows and FAILED,
   the UI answers, and the failure alert of the bad file is in the mail receiver;
6. after ``down`` and ``up`` (volumes kept) the register and the DAG runs are still there.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.deploy.compose_stack import (
    REPO,
    SERVICES,
    STACK,
    compose_state,
    mail_messages,
    prepare_registration,
    service_health,
)

if os.environ.get("RUN_COMPOSE_TESTS") != "1":
    pytest.skip(
        "the compose stack end to end runs with `make test-compose` (needs Docker or podman: `make tools` as root)",
        allow_module_level=True,
    )

GOOD = (REPO / "data/tickit/category.txt", "landing/tickit/category/category_pipe.txt", 11)
BAD = (REPO / "data/malformed/csvkit-examples/bad.csv", "landing/weather/bad.csv")
TIMEOUT = 600  # seconds for a DAG run on a busy 2-core machine (it takes ~1 min when idle)
SUMMARY = REPO / "test-artifacts" / "compose-summary.txt"


class Api:
    """Airflow's REST API (v2) with a token of the simple auth manager's admin."""

    def __init__(self, state: dict) -> None:
        self.base = state["api"]
        self.state = state
        self._token: str | None = None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        if self._token is None:
            self._token = self._send(
                "POST",
                "/auth/token",
                {"username": self.state["username"], "password": self.state["password"]},
                token=None,
            )["access_token"]
        return self._send(method, path, body, token=self._token)

    def _send(self, method: str, path: str, body: dict | None, token: str | None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")


def wait_for(what: str, probe, timeout: float = TIMEOUT, every: float = 5):
    """Call ``probe()`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def register_row(state: dict, file_id: str) -> dict:
    import psycopg2

    conn = psycopg2.connect(**state["redshift"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM public.mng WHERE file_id = %s", (file_id,))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else {}
    finally:
        conn.close()


def land(state: dict, source, key: str) -> str:
    """Upload and register one file through the Lambda handler (as ``make demo``): its file_id."""
    from devstack.demo import DemoFile, land_and_register

    registration_env = state["registration_env"]

    class _Stack:  # what land_and_register asks of the stack
        def registration_env(self) -> dict[str, str]:
            return registration_env

    [answer] = land_and_register(_Stack(), state["landing_bucket"], (DemoFile(source, key, "DONE"),))
    [registered] = answer["files"]
    assert registered["outcome"] == "registered", answer
    return registered["file_id"]


@pytest.fixture(scope="module")
def state() -> dict:
    state = compose_state()
    prepare_registration(state)
    return state


@pytest.fixture(scope="module")
def api(state) -> Api:
    return Api(state)


@pytest.fixture(scope="module")
def loaded(state, api) -> dict:
    """Land, register and trigger the good and the bad file; wait until both are final."""
    ids = {"good": land(state, *GOOD[:2]), "bad": land(state, *BAD)}
    runs = {}
    for name, file_id in ids.items():
        dag_id = _dag_id(state, file_id)
        wait_for(f"DAG {dag_id} parsed", lambda d=dag_id: _dag_exists(api, d))
        api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {"file_id": file_id}})
        runs[name] = (dag_id, run["dag_run_id"])
    rows = {}
    for name, file_id in ids.items():
        rows[name] = wait_for(
            f"{name} file {file_id} to reach a final state",
            lambda f=file_id: (row := register_row(state, f)) and row["status"] in ("DONE", "FAILED") and row,
        )
    return {"ids": ids, "runs": runs, "rows": rows}


def _dag_id(state: dict, file_id: str) -> str:
    from redshift_ingest.config import default_file_types

    file_type = register_row(state, file_id)["file_type"]
    return next(ft.dag_id for ft in default_file_types() if ft.name == file_type)


def _dag_exists(api: Api, dag_id: str) -> bool:
    try:
        api.call("GET", f"/api/v2/dags/{dag_id}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def test_every_service_is_healthy():
    health = service_health()
    assert {s: health.get(s) for s in SERVICES} == dict.fromkeys(SERVICES, "running healthy")
    assert health.get("airflow-init", "").startswith("exited"), "airflow-init should have run once and exited"


@pytest.mark.timeout(900)
def test_dags_parse_in_the_container_without_import_errors(api):
    wait_for("the dag-processor to parse the DAGs", lambda: api.call("GET", "/api/v2/dags?limit=100")["total_entries"])
    errors = api.call("GET", "/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors


@pytest.mark.timeout(1500)
def test_a_file_loads_and_a_bad_file_fails_and_alerts(state, api, loaded):
    good, bad = loaded["rows"]["good"], loaded["rows"]["bad"]
    assert (good["status"], good["rows_loaded"], good["rows_rejected"]) == ("DONE", GOOD[2], 0), good
    assert good["archive_key"], good
    assert bad["status"] == "FAILED", bad
    assert bad["error_message"], bad
    for name, expected in (("good", "success"), ("bad", "failed")):
        dag_id, run_id = loaded["runs"][name]
        run = wait_for(
            f"run {run_id} of {dag_id} to end",
            lambda d=dag_id, r=run_id: (
                (run := api.call("GET", f"/api/v2/dags/{d}/dagRuns/{r}"))["state"] in ("success", "failed") and run
            ),
            timeout=120,
        )
        assert run["state"] == expected, run
    # The UI answers (the SPA's page), and the alert of the bad file reached the mail receiver.
    with urllib.request.urlopen(state["ui"] + "/", timeout=30) as response:
        assert response.status == 200
        assert "Airflow" in response.read().decode("utf-8", "replace")
    # seattle_weather.yaml: alerts to weather-team@example.com; the subject names the status and the key.
    alert = wait_for(
        "the failure alert e-mail",
        lambda: [m for m in mail_messages(state) if BAD[1] in m["subject"]],
        timeout=120,
    )
    assert " ".join(alert[0]["subject"].split()).startswith("[FAILED] seattle_weather:"), alert[0]
    assert alert[0]["to"] == ["weather-team@example.com"], alert[0]
    # An HTML e-mail (the SMTP provider's SmtpNotifier), its values escaped.
    assert html.escape(f"{loaded['runs']['bad'][0]} / {loaded['runs']['bad'][1]}") in alert[0]["html"], alert[0]
    healthy = sum(status == "running healthy" for status in service_health().values())
    summary = (
        f"compose: {healthy} services healthy; {GOOD[1].rsplit('/', 1)[1]} DONE with {good['rows_loaded']} rows; "
        "bad file FAILED and alerted"
    )
    print("\n" + summary, flush=True)
    # `make test-compose` prints it again as its last line, after the browser test and `down`.
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(summary + "\n", encoding="utf-8")


@pytest.mark.timeout(1200)
def test_down_and_up_keep_the_volumes(state, api, loaded):
    subprocess.run([str(STACK), "down"], check=True, cwd=REPO)
    subprocess.run([str(STACK), "up"], check=True, cwd=REPO, env={**os.environ, "BASE_IMAGES": _built_with()})
    good = register_row(state, loaded["ids"]["good"])
    assert (good["status"], good["rows_loaded"]) == ("DONE", GOOD[2])
    dag_id, run_id = loaded["runs"]["good"]
    assert Api(state).call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"] == "success"


def _built_with() -> str:
    """The BASE_IMAGES the images were built with (docker/.images.env), so ``up`` does not probe again."""
    env_file = REPO / "docker" / ".images.env"
    for line in env_file.read_text().splitlines():
        if line.startswith("BASE_IMAGES="):
            return line.split("=", 1)[1]
    return "auto"
