"""A refused file-type config costs its own DAG only: the real DagBag over the real DAG folder, with a
copy of include/ holding a broken YAML file and an invalid one, shows one import error naming both
files and loads every other file type's DAG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": bag.import_errors}))
"""


# The maintenance tasks' first step with no warehouse or S3 around: reading the deployed file types.
MAINTENANCE = """
import json
from redshift_ingest.config import ConfigError, default_settings
from redshift_ingest.maintenance import build_health_dag, build_reconcile_dag
refused = {}
for dag, kwargs in ((build_reconcile_dag(default_settings()), {}), (build_health_dag(default_settings()), None)):
    [task] = dag.tasks
    try:
        task.python_callable(**({"dag": dag, "run_id": "r"} if kwargs is None else kwargs))
    except ConfigError as err:
        refused[dag.dag_id] = str(err)
    except Exception as err:
        refused[dag.dag_id] = f"not refused for the config: {type(err).__name__}: {err}"
print(json.dumps(refused))
"""


def parse_dag_folder(include: Path) -> dict:
    env = {**os.environ, "REDSHIFT_INGEST_INCLUDE_DIR": str(include)}
    out = subprocess.run(
        [sys.executable, "-c", PARSE, str(REPO / "dags")], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_broken_config_is_an_import_error_and_the_others_load(tmp_path):
    include = tmp_path / "include"
    shutil.copytree(REPO / "include", include)
    configs = include / "config" / "file_types"
    (configs / "broken.yaml").write_text("name: [unclosed\n")
    weather = yaml.safe_load((configs / "seattle_weather.yaml").read_text())
    (configs / "weather_elsewhere.yaml").write_text(
        yaml.safe_dump({**weather, "name": "weather_elsewhere", "source": {"prefix": "inbox/", "pattern": "*"}})
    )
    shipped = sorted(f"ingest_{p.stem}" for p in (REPO / "include/config/file_types").glob("*.yaml"))

    parsed = parse_dag_folder(include)

    assert [d for d in parsed["dags"] if d.startswith("ingest_")] == shipped
    errors = {Path(path).name: message for path, message in parsed["errors"].items()}
    # The ingest DAGs of every valid file type and the maintenance DAGs (which read no config to parse) load.
    assert set(errors) == {"ingest_config_errors.py"}
    assert {"reap_expired_claims", "reconcile_landing", "register_health"} <= set(parsed["dags"])
    message = errors["ingest_config_errors.py"]
    assert f"{configs / 'broken.yaml'}: cannot read YAML" in message
    assert f"{configs / 'weather_elsewhere.yaml'}: source.prefix: 'inbox/' is outside the landing prefix" in message

    # Their runs refuse to start while a config is refused, before touching the warehouse or S3 (reconcile
    # would register a refused type's keys as UNMATCHED), naming the refused file.
    env = {**os.environ, "REDSHIFT_INGEST_INCLUDE_DIR": str(include)}
    out = subprocess.run(
        [sys.executable, "-c", MAINTENANCE], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    refused = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(refused) == {"reconcile_landing", "register_health"}
    assert all(f"{configs / 'broken.yaml'}: cannot read YAML" in m for m in refused.values()), refused


def test_a_worker_builds_only_the_dag_of_its_task():
    """The task runner parses the DAG file under a parsing context naming its DAG (what Airflow's
    task_runner sets); the file then builds that one DAG, from that one YAML file."""
    import sys

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

    saved = {k: os.environ.get(k) for k in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID")}
    try:
        with _airflow_parsing_context_manager(dag_id="ingest_tweets", task_id="claim_files"):
            bag = DagBag(str(REPO / "dags" / "ingest_file_types.py"))
    finally:
        # DagBag keeps the imported DAG file in sys.modules: a later DagBag in this process would get
        # the one-DAG module back instead of parsing the file again.
        for name in [m for m in sys.modules if m.endswith("ingest_file_types")]:
            del sys.modules[name]
        # Airflow's context manager leaves its variables set: the rest of this process is no worker.
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert (bag.dag_ids, bag.import_errors) == (["ingest_tweets"], {})
    assert next(t.task_id for t in bag.dags["ingest_tweets"].topological_sort()) == "wait_for_new_file"
