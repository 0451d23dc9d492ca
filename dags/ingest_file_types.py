"""Airflow DAGs: one ingest DAG per file type in include/config/file_types/ (dag_id ``ingest_<name>``).

Thin on purpose: the task graph lives in ``redshift_ingest.dag_factory``; parsing reads the YAML
configs and nothing else.
"""

from redshift_ingest.config import default_file_types, default_settings
from redshift_ingest.dag_factory import build_dag

for _file_type in default_file_types():
    globals()[_file_type.dag_id] = build_dag(_file_type, default_settings())
