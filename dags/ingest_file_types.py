"""Airflow DAGs: one ingest DAG per file type in include/config/file_types/ (dag_id ``ingest_<name>``).

Thin on purpose: the task graph lives in ``redshift_ingest.dag_factory``; parsing reads the YAML
configs and nothing else. A refused config (invalid, or in conflict with another) gets no DAG here and
shows as the import error of ``ingest_config_errors.py``, naming its file; every other file type keeps
its DAG.
"""

from redshift_ingest.config import default_report, default_settings
from redshift_ingest.dag_factory import build_dag

for _file_type in default_report().file_types:
    globals()[_file_type.dag_id] = build_dag(_file_type, default_settings())
