"""CopyIntoTargetOperator against the Redshift stand-in and moto: counts, rejects, exactly once."""

from __future__ import annotations

import json
import os

import pytest

from redshift_ingest import register
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.copy_sql import build_copy
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator, LoadRejected
from redshift_ingest.register import S3Object
from redshift_ingest.tasks import ensure_target_table

pytestmark = pytest.mark.usefixtures("landing")
BUCKET = "example-landing-bucket"
RUN = "manual__test"


def file_type(name: str, **changes) -> FileType:
    """A shipped file type with ``changes``; a ``target`` change is merged into the shipped target."""
    base = next(ft for ft in default_file_types() if ft.name == name)
    if "target" in changes:
        changes["target"] = {**base.target.model_dump(), **changes["target"]}
    return FileType.model_validate({**base.model_dump(), **changes})


def claim(warehouse, settings, landing, ft: FileType, key: str, body: bytes) -> dict:
    landing.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = landing.head_object(Bucket=BUCKET, Key=key)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, ft.name, "test")
    claimed = register.claim_file(warehouse, settings, file_type=ft.name, selection="all", dag_id="d", run_id=RUN)
    ensure_target_table(ft, settings)
    return claimed.to_xcom()


def run(ft: FileType, claimed: dict, settings) -> dict:
    op = CopyIntoTargetOperator(task_id="copy_into_target", file_type=ft, claimed_file=claimed, settings=settings)
    return op.execute({"run_id": RUN})


def count(warehouse, ft: FileType) -> int:
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {ft.target.table.quoted}")
        n = cur.fetchone()[0]
    warehouse.rollback()
    return n


WEATHER = (
    b"date,precipitation,temp_max,temp_min,wind,weather\n"
    b"2012-01-01,0.0,12.8,5.0,4.7,drizzle\n"
    b"2012-01-02,10.9,10.6,2.8,4.5,rain\n"
)


def test_counts_and_register_in_one_transaction(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_counts", "ddl": "ddl/seattle_weather.sql"})
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/two.csv", WEATHER)
    result = run(ft, claimed, settings)
    assert (result["rows_loaded"], result["rows_rejected"], result["already_loaded"]) == (2, 0, False)
    assert result["copy_query_id"] > 0
    row = register.get_file(warehouse, settings, claimed["file_id"])
    warehouse.rollback()
    assert (row["rows_loaded"], row["rows_rejected"], row["copy_query_id"]) == (2, 0, result["copy_query_id"])
    assert count(warehouse, ft) == 2


def test_a_retry_or_cleared_task_loads_nothing_twice(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_retry", "ddl": "ddl/seattle_weather.sql"})
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/retry.csv", WEATHER)
    first = run(ft, claimed, settings)
    second = run(ft, claimed, settings)
    assert second["already_loaded"] is True and second["rows_loaded"] == first["rows_loaded"]
    assert count(warehouse, ft) == 2


def test_rejects_up_to_maxerror_are_counted_with_the_first_error(warehouse, settings, landing):
    ft = file_type(
        "seattle_weather",
        target={"table": "weather.copy_rejects", "ddl": "ddl/seattle_weather.sql"},
        copy_options={"ignore_header": 1, "date_format": "YYYY-MM-DD", "max_error": 2},
    )
    body = WEATHER + b"2012-01-03,lots,1,1,1,snow\n"
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/rejects.csv", body)
    result = run(ft, claimed, settings)
    assert (result["rows_loaded"], result["rows_rejected"]) == (2, 1)
    assert result["first_error"].startswith("line 4, column precipitation")
    report = landing.get_object(Bucket=BUCKET, Key=result["error_report_key"])["Body"].read().decode()
    assert "lots" in report and "Invalid digit" in report


def test_above_maxerror_the_copy_fails_loads_nothing_and_says_why(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_fail", "ddl": "ddl/seattle_weather.sql"})
    body = WEATHER + b"2012-01-03,lots,1,1,1,snow\n"
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/fail.csv", body)
    with pytest.raises(LoadRejected) as err:
        run(ft, claimed, settings)
    assert "into weather.copy_fail (through staging table stage_seattle_weather) failed" in str(err.value)
    assert "Load into table 'stage_seattle_weather' failed" in str(err.value)
    assert "first: line 4, column precipitation" in str(err.value)
    assert err.value.result.rows_rejected == 1
    assert count(warehouse, ft) == 0
    row = register.get_file(warehouse, settings, claimed["file_id"])
    warehouse.rollback()
    assert row["loaded_at"] is None and row["status"] == "IN_PROGRESS"


def test_replace_mode_deletes_in_the_same_transaction(warehouse, settings, landing):
    ft = file_type(
        "seattle_weather",
        target={"table": "weather.copy_replace", "on_new_version": "keep"},
        load_mode="replace",
    )
    first = claim(warehouse, settings, landing, ft, "landing/weather/r1.csv", WEATHER)
    run(ft, first, settings)
    register.mark_done(warehouse, settings, first["file_id"])
    one_row = b"date,precipitation,temp_max,temp_min,wind,weather\n2013-01-01,0.0,1,1,1,sun\n"
    second = claim(warehouse, settings, landing, ft, "landing/weather/r2.csv", one_row)
    run(ft, second, settings)
    assert count(warehouse, ft) == 1


def test_serverless_error_source(warehouse, settings, landing):
    serverless = settings.model_copy(update={"load_errors_source": "sys_load_error_detail"})
    ft = file_type(
        "seattle_weather",
        target={"table": "weather.copy_sys", "ddl": "ddl/seattle_weather.sql"},
        copy_options={"ignore_header": 1, "date_format": "YYYY-MM-DD", "max_error": 5},
    )
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/sys.csv", WEATHER + b"bad-date,1,1,1,1,x\n")
    result = run(ft, claimed, serverless)
    assert (result["rows_loaded"], result["rows_rejected"]) == (2, 1)
    assert result["first_error"].startswith("line 4, column date")


def test_copy_statement_quotes_identifiers_and_binds_values():
    ft = file_type("tickit_event")
    copy = build_copy(
        ft,
        table=ft.target.table,
        copy_from="s3://b/k'; DROP TABLE x; --",
        iam_role_arn="arn:aws:iam::123456789012:role/r",
        compression="gzip",
    )
    assert copy.sql.startswith('COPY "tickit"."event"\nFROM %(copy_from)s\nIAM_ROLE %(iam_role)s')
    assert "DROP" not in copy.sql and "GZIP" in copy.sql and "TIMEFORMAT %(time_format)s" in copy.sql
    assert copy.parameters["delimiter"] == "|" and copy.parameters["time_format"] == "YYYY-MM-DD HH:MI:SS"
    assert "MAXERROR 0" in copy.sql


def test_copy_needs_the_iam_role_extra(monkeypatch, warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_role", "ddl": "ddl/seattle_weather.sql"})
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/role.csv", WEATHER)
    conn = json.loads(os.environ["AIRFLOW_CONN_REDSHIFT_DEFAULT"])
    conn["extra"] = {}
    monkeypatch.setenv("AIRFLOW_CONN_REDSHIFT_DEFAULT", json.dumps(conn))
    with pytest.raises(ValueError, match="no 'iam_role_arn' extra"):
        run(ft, claimed, settings)
