"""Redshift's own errors during a load: retried, failed or quarantined by what they are, not all
treated as bad data (issue: a serializable isolation violation 1023 used to quarantine good files).

The errors are raised for real by the warehouse: a trigger on the target raises them with the
SQLSTATE and text Redshift uses (``XX000``, ``1023: Serializable isolation violation ...``;
``S3ServiceException:Access Denied``), as the COPY's rows reach the table.
"""

from __future__ import annotations

import pytest

from redshift_ingest import register, tasks
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.errors import LoadConfigError, Policy, RetryableLoadError, database_error_policy, sqlstate_policy
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"
BODY = b"date,precipitation,temp_max,temp_min,wind,weather\n2012-01-01,0.0,12.8,5.0,4.7,drizzle\n"
RUN = "manual__errors"

ERRORS = {
    "serializable": "1023: Serializable isolation violation on table - 100234, transactions forming the cycle are: 1",
    "s3_access": "S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid X,CanRetry 1",
}


def weather(table: str) -> FileType:
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    return FileType.model_validate({**base.model_dump(), "target": {**base.target.model_dump(), "table": table}})


def raise_on_insert(warehouse, ft: FileType, message: str | None) -> None:
    """Install (or with None, remove) a trigger that fails every insert into the target."""
    table = ft.target.table.quoted
    with warehouse.cursor() as cur:
        cur.execute(f"DROP TRIGGER IF EXISTS fail_load ON {table}")
        if message:
            cur.execute(
                "CREATE OR REPLACE FUNCTION public.fail_load() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION USING MESSAGE = {message!r}, ERRCODE = 'XX000'; END $$"
            )
            cur.execute(
                f"CREATE TRIGGER fail_load BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION public.fail_load()"
            )
    warehouse.commit()


def claim(warehouse, settings, landing, ft: FileType, key: str) -> dict:
    landing.put_object(Bucket=BUCKET, Key=key, Body=BODY)
    head = landing.head_object(Bucket=BUCKET, Key=key)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, ft.name, "test")
    claimed = register.claim_batch(
        warehouse, settings, file_type=ft.name, dag_id=ft.dag_id, run_id=RUN, max_files=10, max_bytes=10**9
    )
    tasks.ensure_target_table(ft, settings)
    return [c.to_xcom() for c in claimed]


@pytest.mark.parametrize(
    ("error", "raised"),
    [("serializable", RetryableLoadError), ("s3_access", LoadConfigError)],
)
def test_a_redshift_error_that_is_not_the_file_s_data_never_quarantines_it(error, raised, warehouse, settings, landing):
    ft = weather(f"weather.errors_{error}")
    key = f"landing/weather/errors-{error}.csv"
    claimed = claim(warehouse, settings, landing, ft, key)
    raise_on_insert(warehouse, ft, ERRORS[error])
    op = CopyIntoTargetOperator(task_id="copy_into_target", file_type=ft, claimed_files=claimed, settings=settings)
    with pytest.raises(raised, match=ERRORS[error][:20]):
        op.execute({"run_id": RUN})
    row = register.get_file(warehouse, settings, claimed[0]["file_id"])
    warehouse.rollback()
    # Still this run's, unloaded, in landing: a retry (1023) or a person (permissions) takes it from here.
    assert (row["status"], row["loaded_at"], row["quarantine_key"]) == ("IN_PROGRESS", None, None)
    assert landing.head_object(Bucket=BUCKET, Key=key)
    # The cause goes away (the conflict passes, the role is fixed): the same step loads the file.
    raise_on_insert(warehouse, ft, None)
    result = op.execute({"run_id": RUN})
    assert [f["rows_loaded"] for f in result["files"]] == [1]


def test_policies_of_redshift_error_texts():
    import psycopg2

    assert sqlstate_policy("XX000", ERRORS["serializable"]) is Policy.RETRY
    assert sqlstate_policy("40001", "could not serialize access") is Policy.RETRY
    assert sqlstate_policy("XX000", ERRORS["s3_access"]) is Policy.FAIL
    assert sqlstate_policy("XX000", "User arn:aws:sts::1:assumed-role/r is not authorized to assume") is Policy.FAIL
    assert sqlstate_policy("XX000", "Load into table 't' failed. Check 'stl_load_errors'") is Policy.QUARANTINE
    assert sqlstate_policy("57014", "Query (123) cancelled by WLM abort action") is Policy.RETRY
    assert sqlstate_policy("42501", "permission denied for relation t") is Policy.FAIL
    assert sqlstate_policy("22P02", "invalid input syntax for type integer") is Policy.QUARANTINE
    assert database_error_policy(psycopg2.OperationalError("server closed the connection")) is Policy.RETRY
    assert database_error_policy(ValueError("not a database error")) is Policy.FAIL
