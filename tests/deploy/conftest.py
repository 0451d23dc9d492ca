"""A throwaway project shaped like this one (dags/, include/, plugins/, requirements.txt).

The deploy tests build and verify bundles of it, so they do not depend on the real DAGs.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

GOOD_DAG = """
import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag

import throwaway_pkg

# Fails the import unless include/ is where MWAA puts it (dags/include next to plugins/).
assert (throwaway_pkg.include_dir() / "sql" / "select_one.sql").is_file()


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def throwaway_ok():
    EmptyOperator(task_id="start") >> SQLExecuteQueryOperator(
        task_id="q", conn_id="redshift_default", sql="select 1"
    )


throwaway_ok()
"""

PACKAGE = """
from pathlib import Path


def include_dir():
    # /usr/local/airflow/plugins/throwaway_pkg/__init__.py -> /usr/local/airflow/dags/include
    return Path(__file__).resolve().parents[2] / "dags" / "include"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal project with one good DAG; tests add files to it."""
    root = tmp_path / "project"
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "throwaway_ok.py").write_text(textwrap.dedent(GOOD_DAG))
    (root / "include" / "sql").mkdir(parents=True)
    (root / "include" / "sql" / "select_one.sql").write_text("select 1;\n")
    # A .py file under include/ that must never be parsed as a DAG file (.airflowignore keeps it out).
    (root / "include" / "sql" / "trap.py").write_text("from airflow.sdk import dag\nraise RuntimeError('parsed')\n")
    (root / "include" / "config" / "file_types").mkdir(parents=True)
    (root / "include" / "config" / "file_types" / "example.yaml").write_text("name: example\n")
    (root / "plugins" / "throwaway_pkg").mkdir(parents=True)
    (root / "plugins" / "throwaway_pkg" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    return root
