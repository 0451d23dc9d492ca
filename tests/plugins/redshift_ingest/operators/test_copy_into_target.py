"""CopyIntoTargetOperator against the Redshift stand-in and moto: counts, rejects, exactly once."""

from __future__ import annotations

import json
import os
from datetime import UTC

import pytest
from airflow.sdk.exceptions import AirflowFailException

from redshift_ingest import register
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.copy_sql import build_copy
from redshift_ingest.errors import LoadConfigError
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator, LoadRejected, ObjectChanged
from redshift_ingest.register import S3Object
from redshift_ingest.tasks import ensure_target_table
from tests.warehouse_checks import rows_per_file

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


def test_register_mode_copies_into_the_table_argument(warehouse, settings, landing):
    """The plain arguments carry the COPY in register mode too (the factory passes them; a rendered
    template is what runs): ``table`` names another table of the same shape, which receives the rows,
    while the register records the file as loaded."""
    ft = file_type("seattle_weather", target={"table": "weather.copy_arg_default", "ddl": "ddl/seattle_weather.sql"})
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/arg.csv", WEATHER)
    with warehouse.cursor() as cur:
        cur.execute("CREATE TABLE weather.copy_arg_other (LIKE weather.copy_arg_default)")
    warehouse.commit()
    op = CopyIntoTargetOperator(
        task_id="copy_into_target",
        table="weather.copy_arg_other",
        copy_options=ft.copy_options.model_dump(exclude_defaults=True),
        file_type=ft,
        claimed_file=claimed,
        settings=settings,
    )
    assert op.execute({"run_id": RUN})["rows_loaded"] == 2
    other = file_type("seattle_weather", target={"table": "weather.copy_arg_other", "ddl": "ddl/seattle_weather.sql"})
    assert (count(warehouse, ft), count(warehouse, other)) == (0, 2)
    with pytest.raises(LoadConfigError, match=r"copy_options\.delimiter"):
        CopyIntoTargetOperator(
            task_id="t", copy_options={"delimiter": "||"}, file_type=ft, claimed_file=claimed, settings=settings
        ).execute({"run_id": RUN})


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
    message = str(err.value)
    assert message.startswith("line 4, column precipitation"), message  # the cause first
    assert "COPY of s3://example-landing-bucket/landing/weather/fail.csv into weather.copy_fail failed" in message
    assert "Load into table 'weather.copy_fail' failed" in message
    assert "stage_seattle_weather" not in message  # the target is named, not the staging table
    assert err.value.result.rows_rejected == 1
    assert count(warehouse, ft) == 0
    row = register.get_file(warehouse, settings, claimed["file_id"])
    warehouse.rollback()
    # The step that found the bad file set it aside: FAILED, quarantined, with what went wrong.
    assert (row["status"], row["loaded_at"], row["rows_rejected"]) == ("FAILED", None, 1)
    assert row["quarantine_key"] == "quarantine/landing/weather/fail.csv"
    assert row["first_error"].startswith("line 4, column precipitation")


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


def upload(warehouse, settings, landing, ft: FileType, key: str, body: bytes) -> S3Object:
    """Land ``body`` under ``key`` and register that version (as the Lambda does)."""
    landing.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = landing.head_object(Bucket=BUCKET, Key=key)
    modified = head["LastModified"].astimezone(UTC).replace(tzinfo=None)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'), None, modified)
    register.register_object(warehouse, settings, obj, ft.name, "test")
    return obj


def claim_one(warehouse, settings, ft: FileType, run_id: str, file_id: str | None = None) -> dict:
    ensure_target_table(ft, settings)
    claimed = register.claim_file(
        warehouse, settings, file_type=ft.name, selection="all", dag_id="d", run_id=run_id, file_id=file_id
    )
    return claimed.to_xcom()


def run_as(ft: FileType, claimed: dict, settings, run_id: str) -> dict:
    op = CopyIntoTargetOperator(task_id="copy_into_target", file_type=ft, claimed_file=claimed, settings=settings)
    return op.execute({"run_id": run_id})


ONE_DAY = b"date,precipitation,temp_max,temp_min,wind,weather\n2012-01-09,4.3,9.4,5.0,3.4,rain\n"


def test_rows_carry_the_file_id_of_the_file_that_loaded_them(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_tagged"})
    claimed = claim(warehouse, settings, landing, ft, "landing/weather/tagged.csv", WEATHER)
    result = run(ft, claimed, settings)
    assert result["rows_loaded"] == 2
    assert rows_per_file(warehouse, ft.target.table.quoted) == {claimed["file_id"]: 2}
    with warehouse.cursor() as cur:  # the staging table was temporary and is gone
        cur.execute("SELECT count(*) FROM pg_class WHERE relname = 'stage_seattle_weather'")
        assert cur.fetchone()[0] == 0
    warehouse.rollback()


def test_a_new_version_of_a_key_replaces_the_rows_of_the_earlier_one(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_versions"})
    key = "landing/weather/versions.csv"
    other = upload(warehouse, settings, landing, ft, "landing/weather/other-key.csv", ONE_DAY)
    run_as(ft, claim_one(warehouse, settings, ft, "r0", other.file_id), settings, "r0")
    register.mark_done(warehouse, settings, other.file_id)

    v1 = upload(warehouse, settings, landing, ft, key, WEATHER)
    assert run_as(ft, claim_one(warehouse, settings, ft, "r1"), settings, "r1")["rows_loaded"] == 2
    register.mark_done(warehouse, settings, v1.file_id)
    v2 = upload(warehouse, settings, landing, ft, key, ONE_DAY)  # same key, new content (new ETag)
    assert v2.file_id != v1.file_id
    result = run_as(ft, claim_one(warehouse, settings, ft, "r2"), settings, "r2")

    assert (result["rows_loaded"], result["rows_replaced"]) == (1, 2)
    # the other key's rows untouched
    assert rows_per_file(warehouse, ft.target.table.quoted) == {other.file_id: 1, v2.file_id: 1}
    earlier = register.get_file(warehouse, settings, v1.file_id)
    warehouse.rollback()
    assert earlier["status"] == "REPLACED"
    with warehouse.cursor() as cur:
        cur.execute(
            f"SELECT superseded_by, history FROM {settings.register_table.quoted} WHERE file_id = %s", (v1.file_id,)
        )
        superseded_by, history = cur.fetchone()
    warehouse.rollback()
    assert superseded_by == v2.file_id
    assert f"was DONE with 2 rows; replaced by file {v2.file_id}, 2 rows deleted" in history


def test_keep_leaves_the_earlier_version_rows(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_keep", "on_new_version": "keep"})
    key = "landing/weather/kept.csv"
    v1 = upload(warehouse, settings, landing, ft, key, WEATHER)
    run_as(ft, claim_one(warehouse, settings, ft, "r1"), settings, "r1")
    register.mark_done(warehouse, settings, v1.file_id)
    v2 = upload(warehouse, settings, landing, ft, key, ONE_DAY)
    assert run_as(ft, claim_one(warehouse, settings, ft, "r2"), settings, "r2")["rows_replaced"] == 0
    assert rows_per_file(warehouse, ft.target.table.quoted) == {v1.file_id: 2, v2.file_id: 1}


def test_an_older_version_never_replaces_a_newer_one(warehouse, settings, landing):
    """v1 is claimed, then v2 lands and is loaded first: v1's COPY must not delete v2's rows."""
    ft = file_type("seattle_weather", target={"table": "weather.copy_stale"})
    key = "landing/weather/stale.csv"
    v1 = upload(warehouse, settings, landing, ft, key, WEATHER)
    v1_claim = claim_one(warehouse, settings, ft, "r1")
    v2 = upload(warehouse, settings, landing, ft, key, ONE_DAY)
    run_as(ft, claim_one(warehouse, settings, ft, "r2", v2.file_id), settings, "r2")
    register.mark_done(warehouse, settings, v2.file_id)

    # v1's object was overwritten by v2: it can never be read again, so it is never loaded (the
    # register says why), and v2's rows stay.
    with pytest.raises(ObjectChanged, match="changed after it was registered"):
        run_as(ft, v1_claim, settings, "r1")
    assert rows_per_file(warehouse, ft.target.table.quoted) == {v2.file_id: 1}
    row = register.get_file(warehouse, settings, v1.file_id)
    warehouse.rollback()
    assert (row["status"], row["loaded_at"]) == ("FILTERED_OUT", None)
    assert f"ETag {v1.etag} registered" in row["error_message"]


def test_a_reload_replaces_the_file_s_own_rows(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_reload"})
    v1 = upload(warehouse, settings, landing, ft, "landing/weather/reload.csv", WEATHER)
    run_as(ft, claim_one(warehouse, settings, ft, "r1"), settings, "r1")
    register.mark_done(warehouse, settings, v1.file_id)
    claimed = register.claim_file(
        warehouse,
        settings,
        file_type=ft.name,
        selection="all",
        dag_id="d",
        run_id="r2",
        file_id=v1.file_id,
        reload=True,
    )
    result = run_as(ft, claimed.to_xcom(), settings, "r2")
    assert (result["rows_loaded"], result["already_loaded"]) == (2, False)
    assert rows_per_file(warehouse, ft.target.table.quoted) == {v1.file_id: 2}


def test_a_target_without_the_file_id_column_fails_with_the_fix(warehouse, settings, landing):
    ft = file_type("seattle_weather", target={"table": "weather.copy_untagged"})
    with warehouse.cursor() as cur:
        cur.execute(
            "CREATE TABLE weather.copy_untagged (date date, precipitation decimal(6,1), temp_max decimal(5,1),"
            " temp_min decimal(5,1), wind decimal(5,1), weather varchar(16))"
        )
    warehouse.commit()
    upload(warehouse, settings, landing, ft, "landing/weather/untagged.csv", WEATHER)
    with pytest.raises(AirflowFailException, match=r"has no column 'ingest_file_id'.*add ingest_file_id VARCHAR"):
        claim_one(warehouse, settings, ft, "r1")
