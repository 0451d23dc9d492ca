"""Clearing the failed ``load_files`` task redoes its work: the task takes its run's FAILED file back
(out of quarantine), and nothing is loaded twice. The task runs as Airflow runs it for one run_id."""

from __future__ import annotations

from types import SimpleNamespace

from redshift_ingest import register, tasks
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.errors import RunHadFailures
from redshift_ingest.operators.ingest_files import IngestFilesOperator
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"
KEY = "landing/weather/cleared.csv"
BODY = (
    b"date,precipitation,temp_max,temp_min,wind,weather\n"
    b"2016-01-01,0.0,5.6,-1.1,2.4,sun\n"
    b"2016-01-02,1.2,6.1,0.6,3.0,rain\n"
)


class _TI:
    """The part of a task instance the failure callback reads (task id, log URL)."""

    def __init__(self, task_id: str) -> None:
        self.task_id, self.log_url = task_id, None


def test_clear_the_failed_copy_after_fixing_the_table(landing, warehouse, settings, stack):
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    ft = FileType.model_validate(
        {**base.model_dump(), "target": {**base.target.model_dump(), "table": "weather.cleared"}}
    )
    landing.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    head = landing.head_object(Bucket=BUCKET, Key=KEY)
    obj = S3Object(BUCKET, KEY, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, ft.name, "test")
    context = {"run_id": "manual__clear", "params": {"file_id": None}, "dag": SimpleNamespace(dag_id=ft.dag_id)}

    tasks.ensure_target_table(ft, settings)
    # Someone added a column by hand: the COPY fails on every row (not the file's fault).
    with warehouse.cursor() as cur:
        cur.execute("ALTER TABLE weather.cleared ADD COLUMN station varchar(8)")
    warehouse.commit()
    load = IngestFilesOperator(task_id="load_files", file_type=ft, settings=settings)
    try:
        load.execute(context)
        raise AssertionError("the COPY should have failed")
    except RunHadFailures as err:
        tasks.FailureHandler(ft, settings)({**context, "exception": err, "ti": _TI("load_files"), "task": load})
    row = register.get_file(warehouse, settings, obj.file_id)
    warehouse.rollback()
    assert row["status"] == "FAILED" and row["quarantine_key"] == "quarantine/" + KEY

    # The fix, then "Clear" on load_files: the same run, the same task.
    with warehouse.cursor() as cur:
        cur.execute("ALTER TABLE weather.cleared DROP COLUMN station")
    warehouse.commit()
    result = load.execute(context)
    assert (result["claimed"], result["done"], result["rows_loaded"], result["rows_rejected"]) == (1, 1, 2, 0)
    # A second clear of the finished run loads nothing and claims nothing new.
    again = load.execute(context)
    assert (again["claimed"], again["copies"], again["done"]) == (1, 0, 1)
    with warehouse.cursor() as cur:
        cur.execute("SELECT count(*) FROM weather.cleared")
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT attempts, history FROM public.mng WHERE file_id = %s", (obj.file_id,))
        attempts, history = cur.fetchone()
    warehouse.rollback()
    assert attempts == 2 and "(task cleared)" in history and "into weather.cleared failed" in history
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert "archive/" + KEY in keys and KEY not in keys and "quarantine/" + KEY not in keys
