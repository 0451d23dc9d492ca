"""The refused file-type configs, as this file's import error (Airflow UI: "DAG Import Errors").

Every ingest DAG is built in ``ingest_file_types.py``, which skips a refused config so that the other
file types keep loading; this file raises ``ConfigError`` naming each refused YAML file and why, so
the error is as visible as a broken DAG file. With every config valid it defines nothing.
"""

from redshift_ingest.config import default_report

default_report().raise_errors()
