"""Airflow DAGs: one ingest DAG per file type in include/config/file_types/ (dag_id ``ingest_<name>``).

Thin on purpose: the task graph lives in ``redshift_ingest.dag_factory``; parsing reads the YAML
configs and nothing else. A refused config (invalid, or in conflict with another) gets no DAG here and
shows as the import error of ``ingest_config_errors.py``, naming its file; every other file type keeps
its DAG.

A worker parses this file again for every task it runs; it then builds only the DAG of that task
(``get_parsing_context()``, Airflow's "Optimizing DAG parsing delays during execution"), reading one
YAML file, so a task's start does not grow with the number of file types.
"""

from airflow.sdk import get_parsing_context

from redshift_ingest.config import default_report, default_settings, deployed_file_type
from redshift_ingest.dag_factory import build_dag

_wanted = get_parsing_context().dag_id
if _wanted is not None:
    _file_types = tuple(ft for ft in [deployed_file_type(_wanted)] if ft is not None)
else:
    _file_types = default_report().file_types
for _file_type in _file_types:
    globals()[_file_type.dag_id] = build_dag(_file_type, default_settings())
