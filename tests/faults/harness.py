"""Fault injection for the ingest DAGs: run a DAG in its own process, kill it (SIGKILL) when the
register shows a given step boundary, drop its warehouse connection, or take S3 away; then recover
the way production does (Airflow retries, the reaper, the next run) and check the invariants.

The process that runs ``dag.test()`` is the worker: killing it is what a dead MWAA worker does to
a task (no failure callback runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

RUNNER = """
import json, sys
from redshift_ingest.config import FileType, default_file_types, default_settings
from redshift_ingest.dag_factory import build_dag
spec = json.loads(sys.argv[1])
base = next(ft for ft in default_file_types() if ft.name == spec["name"])
ft = FileType.model_validate({**base.model_dump(), **spec["changes"]})
build_dag(ft, default_settings()).test(run_conf=json.loads(sys.argv[2]) if len(sys.argv) > 2 else None)
"""


def file_type_spec(name: str, table: str, **changes) -> dict:
    """A variant of a shipped file type that loads into its own ``table`` (one file per table, so
    the table's row count is that file's rows)."""
    from redshift_ingest.config import default_file_types

    base = next(ft for ft in default_file_types() if ft.name == name)
    target = {**base.target.model_dump(), "table": table}
    return {"name": name, "changes": {"target": target, "retry_delay_seconds": 1, **changes}}


def start_dag(spec: dict, run_conf: dict | None = None) -> subprocess.Popen:
    """Run the DAG of ``spec`` with ``dag.test(run_conf=...)`` in a new process group (the worker).

    Its output is discarded, or appended to the file named by ``CHAOS_WORKER_LOG`` (for debugging).
    """
    log_path = os.environ.get("CHAOS_WORKER_LOG")
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, json.dumps(spec), *([json.dumps(run_conf)] if run_conf else [])],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass
class Outcome:
    """Where the kill landed: ``killed`` False when the run finished before the boundary was seen."""

    killed: bool
    seen: str


def kill_when(proc: subprocess.Popen, condition: Callable[[], str | None], timeout: float = 600) -> Outcome:
    """Poll ``condition`` (returns a description once the boundary is reached) and SIGKILL then.

    ``timeout`` is a deadline for a broken scenario, not a speed check: a worker on a loaded 2-core
    machine can take minutes to import Airflow and reach its COPY."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = condition()
        if seen:
            kill(proc)
            return Outcome(True, seen)
        if proc.poll() is not None:
            return Outcome(False, "the run finished first")
        time.sleep(0.02)
    kill(proc)
    raise TimeoutError("the boundary was never reached")


def run_dag(spec: dict, run_conf: dict | None = None, timeout: float = 300) -> int:
    """Run the DAG to its end in a worker process; returns its exit status."""
    proc = start_dag(spec, run_conf)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise


# A statement trigger's function that sleeps (its return value is ignored for statement triggers).
def sleep_function(seconds: float) -> str:
    return (
        "CREATE OR REPLACE FUNCTION chaos.slow_statement() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$"
    )


@contextlib.contextmanager
def staging_copies_held(dsn: str, seconds: float, targets: tuple[str, ...] = ()):
    """While inside: every COPY into a staging table (``CREATE TEMP TABLE stage_<type> ...``, made inside
    the load) or into one of ``targets`` (``schema.table`` names created while inside, for file types that
    COPY straight into their table) waits ``seconds`` before its first row, so "inside the COPY" is a
    window to kill in, not a race with a COPY of a few milliseconds. An event trigger on the stand-in's
    PostgreSQL (``dsn``, a superuser) gives each such new table a sleeping BEFORE INSERT statement trigger."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE SCHEMA IF NOT EXISTS chaos")
            cur.execute(sleep_function(seconds))
            named = cur.mogrify("%s::text[]", (list(targets),)).decode()
            cur.execute(
                "CREATE OR REPLACE FUNCTION chaos.slow_new_staging() RETURNS event_trigger LANGUAGE plpgsql AS $$ "
                "DECLARE made record; BEGIN "
                "FOR made IN SELECT * FROM pg_event_trigger_ddl_commands() "
                "WHERE object_type = 'table' AND (object_identity LIKE 'pg\\_temp%.stage\\_%' "
                f"OR object_identity = ANY({named})) LOOP "
                "EXECUTE format('CREATE TRIGGER slow_copy BEFORE INSERT ON %s FOR EACH STATEMENT "
                "EXECUTE FUNCTION chaos.slow_statement()', made.object_identity); "
                "END LOOP; END $$"
            )
            cur.execute(
                "CREATE EVENT TRIGGER chaos_slow_staging ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
                "EXECUTE FUNCTION chaos.slow_new_staging()"
            )
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP EVENT TRIGGER IF EXISTS chaos_slow_staging")
        conn.close()
