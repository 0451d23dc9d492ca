"""Triggers that the Airflow triggerer runs for the ingest DAGs (importable from ``plugins/``)."""
