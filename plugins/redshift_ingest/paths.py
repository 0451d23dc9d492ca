"""Where the package finds ``include/`` (SQL templates, DDL, file-type configs).

Locally ``include/`` sits at the repository root beside ``dags/`` and ``plugins/``. On MWAA only
``dags/``, ``plugins.zip`` and ``requirements.txt`` are synced, so the bundle ships it as
``dags/include/`` (kept out of DAG parsing by ``dags/.airflowignore``). Found relative to this file or
to the DAG folder, never to the working directory; ``$REDSHIFT_INGEST_INCLUDE_DIR`` overrides.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

ENV_VAR = "REDSHIFT_INGEST_INCLUDE_DIR"


@cache
def include_dir() -> Path:
    """Return the ``include/`` directory.

    :raises FileNotFoundError: no candidate holds ``sql/`` and ``config/``; the message lists where
        it looked.
    """
    candidates: list[Path] = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    here = Path(__file__).resolve()
    # <repo>/plugins/redshift_ingest/paths.py -> <repo>/include
    candidates.append(here.parents[2] / "include")
    # MWAA: /usr/local/airflow/plugins(.zip)/redshift_ingest -> /usr/local/airflow/dags/include
    candidates.append(here.parents[2] / "dags" / "include")
    dags_folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if dags_folder:
        candidates.append(Path(dags_folder) / "include")
    candidates.append(Path(os.environ.get("AIRFLOW_HOME", "/usr/local/airflow")) / "dags" / "include")
    for candidate in candidates:
        if (candidate / "sql").is_dir() and (candidate / "config").is_dir():
            return candidate
    raise FileNotFoundError(
        "include/ (with sql/ and config/) not found; looked in: "
        + ", ".join(str(c) for c in candidates)
        + f". Set {ENV_VAR} to its path."
    )


def sql_dir() -> Path:
    """The search path of every SQL template (``include/sql``)."""
    return include_dir() / "sql"


def file_types_dir() -> Path:
    """The directory of the file-type configs (``include/config/file_types``)."""
    return include_dir() / "config" / "file_types"
