"""Lineage and assets: the OpenLineage facets of a COPY (built from the real register and target table on
the stand-in), emitted by the OpenLineage provider's own listener on a real task run, and the target
table as an Airflow Asset with the rows loaded in its event's extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from openlineage.client.serde import Serde

from devstack.stack import REPO
from redshift_ingest import register
from redshift_ingest.config import default_file_types
from redshift_ingest.lineage import (
    asset_for,
    copy_facets,
    copy_inputs,
    load_lineage,
    record_load_event,
    redshift_authority,
)
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"


def weather():
    return next(ft for ft in default_file_types() if ft.name == "seattle_weather")


def test_names_follow_the_openlineage_naming_of_the_amazon_provider():
    assert redshift_authority("examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com") == (
        "examplecluster.us-west-2:5439"
    )
    assert redshift_authority("wg.123456789012.us-east-1.redshift-serverless.amazonaws.com", 5440) == (
        "wg.us-east-1:5440"
    )
    assert redshift_authority("c.id.cn-north-1.redshift.amazonaws.com.cn") == "c.cn-north-1:5439"
    assert redshift_authority("127.0.0.1", 40123) == "127.0.0.1:40123"
    with pytest.raises(ValueError, match="no host"):
        redshift_authority(None)
    with pytest.raises(ValueError, match="expected s3://bucket/key"):
        copy_facets(["https://x/y"], "a.b", [], 1, 0, host="h", database="d")


def test_copy_inputs_are_the_staged_data_objects_or_the_landed_one():
    claimed = {"bucket": BUCKET, "key": "landing/x.zip", "file_id": "f"}
    assert copy_inputs(claimed, None) == [f"s3://{BUCKET}/landing/x.zip"]
    staged = {"staged_keys": ["staging/landing/x.zip/a.csv.gz", "staging/landing/x.zip/manifest.json"]}
    assert copy_inputs(claimed, staged) == [f"s3://{BUCKET}/staging/landing/x.zip/a.csv.gz"]


def test_load_lineage_from_the_register_and_the_target_table(landing, warehouse, settings, stack):
    file_type = weather()
    table = file_type.target.table
    with warehouse.cursor() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema_name}"')
        cur.execute(f"DROP TABLE IF EXISTS {table.quoted}")
        cur.execute(f"CREATE TABLE {table.quoted} (date DATE, precipitation NUMERIC(6,2), weather VARCHAR(16))")
    warehouse.commit()
    obj = S3Object(BUCKET, "landing/weather/lineage.csv", 2048, "etag-lineage")
    register.register_object(warehouse, settings, obj, file_type.name, "test")
    register.claim_file(warehouse, settings, file_type=file_type.name, selection="all", dag_id="d", run_id="r1")
    with warehouse.cursor() as cur:
        register.record_load(
            cur, settings, obj.file_id, "r1", copy_query_id=42, rows_loaded=1461, rows_rejected=2, first_error="line 7"
        )
    warehouse.commit()

    claimed = {"file_id": obj.file_id, "bucket": BUCKET, "key": obj.key}
    lineage = Serde.to_dict(load_lineage(file_type, settings, claimed, {"staged_keys": []}))

    [source] = lineage["inputs"]
    assert (source["namespace"], source["name"]) == (f"s3://{BUCKET}", "landing/weather/lineage.csv")
    assert source["inputFacets"]["inputStatistics"] | {"_producer": None, "_schemaURL": None} == {
        "rowCount": 1463,
        "size": 2048,
        "_producer": None,
        "_schemaURL": None,
    }
    [target] = lineage["outputs"]
    port = json.loads(os.environ["AIRFLOW_CONN_REDSHIFT_DEFAULT"])["port"]
    assert target["namespace"] == f"redshift://127.0.0.1:{port}"  # an IP: the host as it is
    assert target["name"] == f"postgres.{table}"  # database (the connection's schema field).schema.table
    assert [(f["name"], f["type"]) for f in target["facets"]["schema"]["fields"]] == [
        ("date", "date"),
        ("precipitation", "numeric"),
        ("weather", "character varying"),
    ]
    assert target["outputFacets"]["outputStatistics"]["rowCount"] == 1461
    load = lineage["run_facets"]["redshiftIngestLoad"]
    assert (load["rowsLoaded"], load["rowsRejected"], load["copyQueryId"], load["firstError"]) == (
        1461,
        2,
        42,
        "line 7",
    )


def test_the_target_table_is_an_asset_with_the_load_in_its_event_extra(settings):
    from airflow.sdk import DAG, Asset
    from airflow.sdk.bases.operator import BaseOperator
    from airflow.sdk.execution_time.context import OutletEventAccessors

    file_type = weather()
    asset = asset_for(file_type, settings)
    assert (asset.name, asset.uri, asset.group) == (
        "weather.daily_observations",
        "x-redshift-ingest://redshift_default/weather/daily_observations",
        "redshift_table",
    )
    with DAG("asset_probe", schedule=None) as dag:
        BaseOperator(task_id="mark_done", outlets=[asset])
    downstream = DAG("report", schedule=[Asset.ref(name="weather.daily_observations")])
    assert dag.task_dict["mark_done"].outlets == [asset] and downstream.timetable is not None

    events = OutletEventAccessors()
    row = {
        "file_id": "f",
        "bucket": BUCKET,
        "s3_key": "landing/weather/a.csv",
        "status": "DONE",
        "rows_loaded": 3,
        "rows_rejected": 0,
        "size_bytes": 120,
        "copy_query_id": 9,
    }
    record_load_event({"outlet_events": events}, asset, file_type, row)
    assert events[asset].extra == {
        "file_type": "seattle_weather",
        "file_id": "f",
        "s3_url": f"s3://{BUCKET}/landing/weather/a.csv",
        "status": "DONE",
        "rows_loaded": 3,
        "rows_rejected": 0,
        "size_bytes": 120,
        "copy_query_id": 9,
    }


PROBE_DAG = '''
from datetime import datetime

from airflow.sdk import DAG, BaseOperator

from redshift_ingest.lineage import copy_facets


class CopyProbe(BaseOperator):
    """Reports lineage the way CopyIntoTargetOperator does (get_openlineage_facets_on_complete)."""

    def execute(self, context):
        return "loaded"

    def get_openlineage_facets_on_complete(self, task_instance):
        return copy_facets(
            ["s3://example-landing-bucket/landing/weather/a.csv"],
            "weather.daily_observations",
            [("date", "date"), ("weather", "character varying")],
            1461,
            2,
            host="examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com",
            database="dev",
            copy_query_id=42,
            file_id="f1",
        )


with DAG("lineage_probe", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    CopyProbe(task_id="copy_into_target")
'''


def test_the_openlineage_listener_emits_the_copy_facets(tmp_path):
    """A real task run (``dag.test()`` in its own Airflow home) with the provider's listener and its
    ``file`` transport: the COMPLETE event of the task carries our datasets and run facet."""
    dags, home, events = tmp_path / "dags", tmp_path / "home", tmp_path / "events.jsonl"
    dags.mkdir()
    (dags / "lineage_probe.py").write_text(PROBE_DAG)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "redshift_ingest_tests",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO), str(dags)]),
    }
    script = textwrap.dedent("""
        import subprocess, sys
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
        import lineage_probe
        lineage_probe.dag.test()
    """)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    emitted = [json.loads(line) for line in events.read_text().splitlines()]
    [complete] = [
        e for e in emitted if e["eventType"] == "COMPLETE" and e["job"]["name"] == "lineage_probe.copy_into_target"
    ]
    [source] = complete["inputs"]
    assert (source["namespace"], source["name"]) == ("s3://example-landing-bucket", "landing/weather/a.csv")
    [target] = complete["outputs"]
    assert (target["namespace"], target["name"]) == (
        "redshift://examplecluster.us-west-2:5439",
        "dev.weather.daily_observations",
    )
    assert target["outputFacets"]["outputStatistics"]["rowCount"] == 1461
    assert [f["name"] for f in target["facets"]["schema"]["fields"]] == ["date", "weather"]
    load = complete["run"]["facets"]["redshiftIngestLoad"]
    assert (load["rowsLoaded"], load["rowsRejected"], load["fileId"]) == (1461, 2, "f1")
