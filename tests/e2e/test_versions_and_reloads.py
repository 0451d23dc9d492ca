"""New versions of a key, forced reloads and a table shared by two file types, through the real DAGs.

Every run is a real ``dag.test()`` against the Redshift stand-in and moto S3 with the Seattle weather
file (1,461 rows). The invariant checked each time: the target holds each loaded file's rows exactly
once, found by the ``ingest_file_id`` column, and nothing else.
"""

from __future__ import annotations

import io
from datetime import UTC

import pytest
from airflow.sdk.exceptions import AirflowFailException

from devstack.stack import REPO
from redshift_ingest import register, tasks
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.dag_factory import build_dag
from redshift_ingest.register import S3Object
from tests.faults.harness import start_dag
from tests.warehouse_checks import register_history, rows_per_file

BUCKET = "example-landing-bucket"
WEATHER = REPO / "data/csv/seattle-weather.csv"
WEATHER_ROWS = 1461


def weather(table: str, **changes) -> FileType:
    """The shipped seattle_weather file type, loading ``table``."""
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    data = base.model_dump()
    data["target"] = {**data["target"], "table": table, **changes.pop("target", {})}
    return FileType.model_validate({**data, **changes})


def land(landing, warehouse, settings, key: str, body: bytes, file_type: str = "seattle_weather") -> S3Object:
    """Put ``body`` under ``key`` and register that version, as the Lambda does."""
    landing.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = landing.head_object(Bucket=BUCKET, Key=key)
    modified = head["LastModified"].astimezone(UTC).replace(tzinfo=None)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'), None, modified)
    register.register_object(warehouse, settings, obj, file_type, "test")
    return obj


def first_lines(n: int) -> bytes:
    """The header and the first ``n`` rows of the weather file."""
    with WEATHER.open("rb") as f:
        return b"".join(line for _, line in zip(range(n + 1), io.BufferedReader(f), strict=False))


def row(warehouse, settings, file_id: str) -> dict:
    found = register.get_file(warehouse, settings, file_id)
    warehouse.rollback()
    return found


def keys(landing) -> set[str]:
    return {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_a_reupload_of_a_key_replaces_its_rows(landing, warehouse, settings, stack):
    ft = weather("weather.versions")
    key = "landing/weather/observations.csv"
    v1 = land(landing, warehouse, settings, key, WEATHER.read_bytes())
    build_dag(ft, settings).test()
    assert row(warehouse, settings, v1.file_id)["status"] == "DONE"
    assert rows_per_file(warehouse, '"weather"."versions"') == {v1.file_id: WEATHER_ROWS}

    v2 = land(landing, warehouse, settings, key, first_lines(100))  # corrected upload, same key
    build_dag(ft, settings).test()

    assert (row(warehouse, settings, v2.file_id)["status"], row(warehouse, settings, v2.file_id)["rows_loaded"]) == (
        "DONE",
        100,
    )
    assert row(warehouse, settings, v1.file_id)["status"] == "REPLACED"
    replaced = register_history(warehouse, settings, v1.file_id)
    assert f"replaced by file {v2.file_id}, {WEATHER_ROWS} rows deleted" in replaced
    assert rows_per_file(warehouse, '"weather"."versions"') == {v2.file_id: 100}
    assert keys(landing) == {"archive/" + key}


def test_force_reloads_a_done_file_without_duplicates(landing, warehouse, settings, stack):
    ft = weather("weather.forced")
    key = "landing/weather/forced.csv"
    obj = land(landing, warehouse, settings, key, WEATHER.read_bytes())
    build_dag(ft, settings).test()
    first = row(warehouse, settings, obj.file_id)
    assert (first["status"], first["rows_loaded"]) == ("DONE", WEATHER_ROWS)

    build_dag(ft, settings).test(run_conf={"file_id": obj.file_id, "force": True})

    again = row(warehouse, settings, obj.file_id)
    assert (again["status"], again["rows_loaded"], again["attempts"]) == ("DONE", WEATHER_ROWS, 2)
    assert again["copy_query_id"] != first["copy_query_id"]  # the COPY really ran again
    assert rows_per_file(warehouse, '"weather"."forced"') == {obj.file_id: WEATHER_ROWS}
    assert "attempt 1 DONE: 1461 rows loaded, 0 rejected" in register_history(warehouse, settings, obj.file_id)
    assert "(forced reload" in register_history(warehouse, settings, obj.file_id)
    assert keys(landing) == {"archive/" + key}


def context(params: dict, run_id: str = "manual__force") -> dict:
    class Dag:
        dag_id = "ingest_seattle_weather"

    return {"params": params, "run_id": run_id, "dag": Dag()}


def test_force_is_refused_where_it_could_duplicate_rows(landing, warehouse, settings, stack):
    untagged = weather("weather.untagged", target={"file_id_column": None, "on_new_version": "keep"})
    obj = land(landing, warehouse, settings, "landing/weather/untagged.csv", first_lines(3))
    register.claim_file(
        warehouse, settings, file_type="seattle_weather", selection="all", dag_id="d", run_id="r1", file_id=obj.file_id
    )
    with warehouse.cursor() as cur:
        register.record_load(
            cur, settings, obj.file_id, "r1", copy_query_id=1, rows_loaded=3, rows_rejected=0, first_error=None
        )
    warehouse.commit()
    register.mark_done(warehouse, settings, obj.file_id)

    with pytest.raises(AirflowFailException, match="force reloads one file: give its file_id too"):
        tasks.claim_files(untagged, settings, context({"file_id": None, "force": True}))
    with pytest.raises(AirflowFailException, match=r"without target\.file_id_column, so a reload cannot find"):
        tasks.claim_files(untagged, settings, context({"file_id": obj.file_id, "force": True}))
    with pytest.raises(AirflowFailException, match="is DONE: trigger with force=true"):
        tasks.claim_files(untagged, settings, context({"file_id": obj.file_id, "force": False}))
    # The DAGs declare no params: a conf from the API or the configuration JSON is checked by the run.
    with pytest.raises(AirflowFailException, match="force must be true or false, got a str"):
        tasks.claim_files(untagged, settings, context({"file_id": obj.file_id, "force": "yes"}))
    with pytest.raises(AirflowFailException, match="file_id must be a string"):
        tasks.claim_files(untagged, settings, context({"file_id": [obj.file_id], "force": False}))
    assert row(warehouse, settings, obj.file_id)["status"] == "DONE"


def test_two_file_types_share_one_table(landing, warehouse, settings, stack):
    """Two file types load one table at the same time (two worker processes); then a new version of
    one type's file replaces that file's rows and nothing of the other type's."""
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    target = {**base.target.model_dump(), "table": "weather.shared"}
    north = {"name": "seattle_weather", "changes": {"target": target, "retry_delay_seconds": 1}}
    # The second type keeps a deployed dag_id (penguins) and reads weather files from its own prefix.
    south_changes = {
        **{k: v for k, v in base.model_dump().items() if k not in ("name", "description", "owner", "tags")},
        "source": {"prefix": "landing/weather-south/", "pattern": "*.csv"},
        "target": target,
        "retry_delay_seconds": 1,
    }
    south = {"name": "penguins", "changes": south_changes}
    a = land(landing, warehouse, settings, "landing/weather/north.csv", WEATHER.read_bytes())
    b = land(landing, warehouse, settings, "landing/weather-south/south.csv", first_lines(500), "penguins")

    workers = [start_dag(north), start_dag(south)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    assert (row(warehouse, settings, a.file_id)["status"], row(warehouse, settings, b.file_id)["status"]) == (
        "DONE",
        "DONE",
    )
    assert rows_per_file(warehouse, '"weather"."shared"') == {a.file_id: WEATHER_ROWS, b.file_id: 500}

    b2 = land(landing, warehouse, settings, "landing/weather-south/south.csv", first_lines(20), "penguins")
    assert start_dag(south).wait(timeout=300) == 0
    assert row(warehouse, settings, b.file_id)["status"] == "REPLACED"
    assert rows_per_file(warehouse, '"weather"."shared"') == {a.file_id: WEATHER_ROWS, b2.file_id: 20}
