"""DAG integrity and policy: every DAG file imports cleanly, one DAG per file type, house rules kept."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from redshift_ingest.config import KNOWN_TAGS, default_file_types

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(str(DAGS))
    ours = [w for w in caught if "/dags/" in str(w.filename) or "redshift_ingest" in str(w.filename)]
    return bag, ours


def test_no_import_errors(dagbag):
    bag, _ = dagbag
    assert bag.import_errors == {}


def test_no_warnings_from_our_code(dagbag):
    _, ours = dagbag
    assert [f"{w.filename}:{w.lineno}: {w.message}" for w in ours] == []


def test_one_dag_per_file_type(dagbag):
    bag, _ = dagbag
    expected = {f"ingest_{ft.name}" for ft in default_file_types()}
    assert expected <= set(bag.dag_ids)
    assert {d for d in bag.dag_ids if d.startswith("ingest_")} == expected


@pytest.mark.parametrize("file_type", default_file_types(), ids=lambda ft: ft.name)
def test_dag_policy(dagbag, file_type):
    bag, _ = dagbag
    dag = bag.dags[file_type.dag_id]
    assert dag.owner == file_type.owner and dag.owner != "airflow"
    assert set(dag.tags) <= KNOWN_TAGS and "ingest" in dag.tags
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md and file_type.name in dag.doc_md
    assert '{"file_id": "<file_id>"}' in dag.doc_md  # how to rerun one file: no params, the run's conf
    # Two task boundaries cost seconds per file (docs/performance.md): the wait, then the load.
    assert [t.task_id for t in dag.topological_sort()] == ["wait_for_new_file", "load_files"]
    for task in dag.tasks:
        assert task.on_failure_callback, f"{task.task_id} has no failure callback"
        # The sensor too: a register it cannot read is retried, not a failed run.
        assert task.retries == file_type.retries and task.retry_exponential_backoff
        assert task.retry_delay.total_seconds() == file_type.retry_delay_seconds and task.owner == file_type.owner
    # The fast mode is the default and what the shipped configs use.
    assert type(dag.timetable).__name__ == "ContinuousTimetable"
    sensor = dag.get_task("wait_for_new_file")
    assert sensor.deferrable is True and sensor.soft_fail is True
    assert sensor.poll_interval == 2
    # The factory passes the file type's COPY through the operator's plain arguments.
    copy = dag.get_task("load_files")
    assert [a.name for a in copy.outlets] == [str(file_type.target.table)]  # the table's asset event
    assert (copy.table, copy.format) == (str(file_type.target.table), file_type.format)
    assert copy.copy_options == file_type.copy_options.model_dump(exclude_defaults=True)
    assert copy.redshift_conn_id == "redshift_default" and copy.aws_conn_id == "aws_default"
    assert "table" in copy.template_fields and "copy_options" in copy.template_fields


def test_parsing_does_no_io(monkeypatch):
    """Building the DAGs touches no connection, S3 or database: those calls are made to fail."""
    import importlib

    import psycopg2

    from redshift_ingest.dag_factory import build_dag

    def forbidden(*args, **kwargs):
        raise AssertionError("I/O at DAG parse time")

    monkeypatch.setattr(psycopg2, "connect", forbidden)
    monkeypatch.setattr("airflow.sdk.BaseHook.get_connection", forbidden)
    monkeypatch.setattr("boto3.client", forbidden)
    from redshift_ingest.config import default_settings

    dags = [build_dag(ft, default_settings()) for ft in default_file_types()]
    assert len(dags) == len(default_file_types())
    assert importlib.import_module("redshift_ingest.dag_factory")


@pytest.mark.parametrize("dag_id", ["reap_expired_claims", "reconcile_landing"])
def test_register_maintenance_dags(dagbag, dag_id):
    bag, _ = dagbag
    dag = bag.dags[dag_id]
    assert dag.owner == "data-platform"
    assert set(dag.tags) <= KNOWN_TAGS
    assert dag.catchup is False and dag.max_active_runs == 1
    assert all(t.retries >= 1 for t in dag.tasks)


# Imported when a task runs, never while the dag-processor parses the DAG folder (each parse is a
# fresh process: an import at parse time is paid again for every file at every parse).
TASK_TIME_MODULES = (
    "redshift_ingest.tasks",
    "redshift_ingest.batch_load",
    "redshift_ingest.prepare",
    "redshift_ingest.hooks.warehouse",
    "redshift_ingest.register",
    "psycopg2",
    "boto3",
    "botocore",
    "requests",
)

IMPORTED_BY_PARSING = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(sys.argv[1])
print(json.dumps({"dags": len(bag.dag_ids), "errors": bag.import_errors, "new": sorted(set(sys.modules) - before)}))
"""


def test_parsing_imports_no_task_code():
    """The DAG folder parses without the task steps, the warehouse driver, boto3 or requests."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY_PARSING, str(DAGS)], capture_output=True, text=True, check=True
    )
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {} and parsed["dags"] > len(default_file_types())
    assert "redshift_ingest.dag_factory" in parsed["new"]
    loaded = [m for m in parsed["new"] if m.startswith(TASK_TIME_MODULES)]
    assert loaded == []


def test_no_run_params(dagbag):
    """The ingest DAGs declare no params and no default_args, neither in the serialized DAG (what the
    dag-processor writes at every parse) nor on any task: a run is asked for a file by its conf, checked by
    ``tasks.run_request`` (tests/plugins/redshift_ingest/test_run_request.py; e2e: test_replay.py)."""
    from airflow.serialization.serialized_objects import DagSerialization

    bag, _ = dagbag
    for file_type in default_file_types():
        dag = bag.dags[file_type.dag_id]
        assert not dag.params and not dag.default_args
        serialized = DagSerialization.to_dict(dag)["dag"]
        assert not serialized.get("params") and not serialized.get("default_args")
        for task in serialized["tasks"]:
            assert not task["__var"].get("params"), task["__var"]["task_id"]
