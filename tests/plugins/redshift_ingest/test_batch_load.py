"""Batch loading on real files: one run claims a backlog, loads it with few COPYs in one
transaction, and accounts for every file exactly as a one-file load would.

The files are slices of the real Seattle weather data set (data/csv/seattle-weather.csv). Each test
runs the real steps (claim, prepare, the COPY operator, finish) for one run id against the Redshift
stand-in and moto's S3 server.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from redshift_ingest import register, tasks
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.errors import RunHadFailures
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator
from redshift_ingest.register import S3Object

BUCKET = "example-landing-bucket"
WEATHER = Path(__file__).resolve().parents[3] / "data" / "csv" / "seattle-weather.csv"
_runs = itertools.count()


def weather_slices(n: int) -> list[bytes]:
    """The real file cut into ``n`` CSV files, each with the header."""
    header, *rows = WEATHER.read_bytes().splitlines(keepends=True)
    size = -(-len(rows) // n)
    return [header + b"".join(rows[i : i + size]) for i in range(0, len(rows), size)]


def variant(table: str, tagged: bool, **changes) -> FileType:
    """The shipped weather file type into its own ``table``; untagged: without the file_id column
    (see :func:`untagged_table`), so a batch loads through one manifest COPY."""
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    target = {**base.target.model_dump(), "table": table}
    if not tagged:
        target.update(file_id_column=None, on_new_version="keep")
    return FileType.model_validate({**base.model_dump(), "target": target, **changes})


def untagged_table(warehouse, ft: FileType) -> FileType:
    """Create ``ft``'s table as the shipped DDL does, less the ``ingest_file_id`` column."""
    with warehouse.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ft.target.table.schema_name}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {ft.target.table.quoted} (date date, precipitation decimal(6, 1), "
            "temp_max decimal(5, 1), temp_min decimal(5, 1), wind decimal(5, 1), weather varchar(16))"
        )
    warehouse.commit()
    return ft


def land(s3, warehouse, settings, ft: FileType, key: str, body: bytes) -> S3Object:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    head = s3.head_object(Bucket=BUCKET, Key=key)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, ft.name, "test")
    return obj


def run(ft: FileType, settings, **params) -> dict:
    """One DAG run's steps, as Airflow runs them; returns what each step returned."""
    context = {
        "run_id": f"batch__{next(_runs)}",
        "params": {"file_id": None, "force": False, **params},
        "dag": SimpleNamespace(dag_id=ft.dag_id),
    }
    claimed = tasks.claim_files(ft, settings, context)
    prepared = tasks.prepare_files(ft, settings, claimed, context)
    copy = CopyIntoTargetOperator(
        task_id="copy_into_target", file_type=ft, claimed_files=claimed, prepared=prepared, settings=settings
    )
    out = {"claimed": claimed, "copy": copy.execute(context)}
    try:
        out["finish"] = tasks.finish_files(ft, settings, claimed, context)
    except RunHadFailures as err:
        out["finish_error"] = err
    return out


def rows(warehouse, settings, objects: list[S3Object]) -> list[dict]:
    found = [register.get_file(warehouse, settings, o.file_id) for o in objects]
    warehouse.rollback()
    return found


def count(warehouse, ft: FileType) -> int:
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {ft.target.table.quoted}")
        n = cur.fetchone()[0]
    warehouse.rollback()
    return n


@pytest.mark.parametrize("tagged", [False, True], ids=["manifest", "per_file"])
def test_a_backlog_loads_in_one_transaction_with_exact_counts_per_file(landing, warehouse, settings, tagged):
    ft = variant(f"weather.batch_{'tagged' if tagged else 'manifest'}", tagged)
    if not tagged:
        untagged_table(warehouse, ft)
    slices = weather_slices(12)
    objects = [
        land(landing, warehouse, settings, ft, f"landing/weather/b{tagged}-{i:02}.csv", b) for i, b in enumerate(slices)
    ]
    # A key that merely starts with a batch file's key is not that file (COPY FROM takes a prefix).
    landing.put_object(Bucket=BUCKET, Key=objects[0].key + ".bak", Body=slices[0])

    out = run(ft, settings)

    assert len(out["claimed"]) == 12
    copy = out["copy"]
    assert copy["transactions"] == 1 and copy["failed"] == []
    assert copy["copies"] == (12 if tagged else 1) and copy["mode"] == ("per_file" if tagged else "manifest")
    expected = [len(b.splitlines()) - 1 for b in slices]
    found = rows(warehouse, settings, objects)
    assert [r["rows_loaded"] for r in found] == expected
    assert {r["status"] for r in found} == {"DONE"} and all(r["rows_rejected"] == 0 for r in found)
    assert count(warehouse, ft) == 1461
    assert out["finish"]["done"] == 12
    if tagged:
        from tests.warehouse_checks import rows_per_file

        assert rows_per_file(warehouse, ft.target.table.quoted) == {
            o.file_id: n for o, n in zip(objects, expected, strict=True)
        }
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert all("archive/" + o.key in keys and o.key not in keys for o in objects)
    assert objects[0].key + ".bak" in keys  # never loaded, never moved
    assert not [k for k in keys if k.startswith(settings.staging_prefix)]  # manifests cleared


@pytest.mark.parametrize("tagged", [False, True], ids=["manifest", "per_file"])
def test_a_bad_file_is_set_aside_and_its_neighbours_load(landing, warehouse, settings, tagged):
    ft = variant(f"weather.batch_bad_{'tagged' if tagged else 'manifest'}", tagged)
    if not tagged:
        untagged_table(warehouse, ft)
    slices = weather_slices(5)
    bad = slices[2].replace(b"2014-", b"20X4-", 1)  # one row with a date COPY rejects; MAXERROR 0
    bodies = [*slices[:2], bad, *slices[3:]]
    objects = [
        land(landing, warehouse, settings, ft, f"landing/weather/bad{tagged}-{i}.csv", b) for i, b in enumerate(bodies)
    ]

    out = run(ft, settings)

    found = rows(warehouse, settings, objects)
    assert [r["status"] for r in found] == ["DONE", "DONE", "FAILED", "DONE", "DONE"]
    failed = found[2]
    assert failed["quarantine_key"] == "quarantine/" + objects[2].key
    assert failed["rows_rejected"] == 1 and failed["first_error"].startswith("line ")
    assert "date" in failed["first_error"]
    assert failed["error_message"].startswith("line ")  # the cause first
    assert count(warehouse, ft) == sum(len(b.splitlines()) - 1 for i, b in enumerate(bodies) if i != 2)
    assert out["copy"]["transactions"] == 2  # the failed attempt, then the batch without the bad file
    assert isinstance(out["finish_error"], RunHadFailures) and out["finish_error"].alerted


def test_rejects_are_counted_per_file_within_each_file_s_maxerror(landing, warehouse, settings):
    ft = variant(
        "weather.batch_rejects", False, copy_options={"ignore_header": 1, "date_format": "YYYY-MM-DD", "max_error": 2}
    )
    untagged_table(warehouse, ft)
    slices = weather_slices(3)
    one_bad = slices[0].replace(b"2012-", b"20X2-", 1)
    three_bad = slices[1].replace(b"2013-", b"20X3-", 3)  # over the file's MAXERROR 2
    bodies = [one_bad, three_bad, slices[2]]
    objects = [land(landing, warehouse, settings, ft, f"landing/weather/rej-{i}.csv", b) for i, b in enumerate(bodies)]

    run(ft, settings)

    found = rows(warehouse, settings, objects)
    assert [r["status"] for r in found] == ["DONE_WITH_REJECTS", "FAILED", "DONE"]
    assert (found[0]["rows_loaded"], found[0]["rows_rejected"]) == (len(one_bad.splitlines()) - 2, 1)
    assert found[1]["rows_rejected"] == 3 and "more than MAXERROR 2" in found[1]["error_message"]
    assert found[0]["error_report_key"] == "archive/" + objects[0].key + ".load_errors.csv"
    report = landing.get_object(Bucket=BUCKET, Key=found[0]["error_report_key"])["Body"].read().decode()
    assert "20X2" in report and objects[0].key in report


def test_an_object_overwritten_after_registration_is_not_loaded_under_the_old_id(landing, warehouse, settings):
    ft = untagged_table(warehouse, variant("weather.batch_changed", False))
    slices = weather_slices(3)
    objects = [land(landing, warehouse, settings, ft, f"landing/weather/chg-{i}.csv", b) for i, b in enumerate(slices)]
    # Overwritten behind the register's back (its event not processed yet).
    landing.put_object(Bucket=BUCKET, Key=objects[1].key, Body=slices[1] + slices[1].split(b"\n", 1)[1])

    run(ft, settings)

    found = rows(warehouse, settings, objects)
    assert [r["status"] for r in found] == ["DONE", "FILTERED_OUT", "DONE"]
    assert "changed after it was registered" in found[1]["error_message"]
    assert found[1]["loaded_at"] is None
    assert count(warehouse, ft) == sum(len(b.splitlines()) - 1 for i, b in enumerate(slices) if i != 1)


def test_a_file_with_every_row_rejected_fails_and_is_quarantined(landing, warehouse, settings):
    ft = variant(
        "weather.batch_all_rejected",
        False,
        copy_options={"ignore_header": 1, "date_format": "YYYY-MM-DD", "max_error": 100},
    )
    untagged_table(warehouse, ft)
    good = weather_slices(2)[0]
    junk = b"date,precipitation,temp_max,temp_min,wind,weather\nx,y,z,1,1,sun\nq,r,s,1,1,rain\n"
    objects = [
        land(landing, warehouse, settings, ft, f"landing/weather/allrej-{i}.csv", b) for i, b in enumerate([good, junk])
    ]

    run(ft, settings)

    found = rows(warehouse, settings, objects)
    assert [r["status"] for r in found] == ["DONE", "FAILED"]
    assert found[1]["quarantine_key"] == "quarantine/" + objects[1].key
    assert "every row was rejected" in found[1]["error_message"] and found[1]["rows_rejected"] == 2


def test_batch_limits_files_and_bytes(landing, warehouse, settings):
    ft = untagged_table(warehouse, variant("weather.batch_limits", False, batch={"max_files": 4, "max_bytes": 10**9}))
    slices = weather_slices(10)
    for i, b in enumerate(slices):
        land(landing, warehouse, settings, ft, f"landing/weather/lim-{i}.csv", b)
    assert len(run(ft, settings)["claimed"]) == 4
    by_bytes = variant("weather.batch_limits", False, batch={"max_files": 100, "max_bytes": 2 * len(slices[4]) + 1})
    assert len(run(by_bytes, settings)["claimed"]) == 2
    one = variant("weather.batch_limits", False, batch={"max_files": 1})
    assert len(run(one, settings)["claimed"]) == 1


@pytest.mark.parametrize("tagged", [False, True], ids=["manifest", "per_file"])
def test_a_batch_and_one_file_loads_give_identical_tables_and_counts(landing, warehouse, settings, tagged):
    """The same files, with rejected rows in some, loaded as one batch and one file per run."""
    options = {"ignore_header": 1, "date_format": "YYYY-MM-DD", "max_error": 5}
    suffix = "tagged" if tagged else "plain"
    batched = variant(f"weather.same_batched_{suffix}", tagged, copy_options=options)
    single = variant(f"weather.same_single_{suffix}", tagged, copy_options=options, batch={"max_files": 1})
    if not tagged:
        untagged_table(warehouse, batched)
        untagged_table(warehouse, single)
    bodies = weather_slices(6)
    bodies[1] = bodies[1].replace(b"2012-", b"20X2-", 2)
    bodies[4] = bodies[4].replace(b",rain", b",rain-and-then-a-very-long-description-of-it", 1)
    counts = {}
    for ft in (batched, single):
        objects = [
            land(landing, warehouse, settings, ft, f"landing/weather/same-{ft.target.table.table}-{i}.csv", b)
            for i, b in enumerate(bodies)
        ]
        while any(r["status"] == "NEW" for r in rows(warehouse, settings, objects)):
            run(ft, settings)
        counts[ft.name] = [
            (r["status"], r["rows_loaded"], r["rows_rejected"], r["first_error"])
            for r in rows(warehouse, settings, objects)
        ]
        with warehouse.cursor() as cur:
            cur.execute(
                f"SELECT date, precipitation, temp_max, temp_min, wind, weather FROM {ft.target.table.quoted} "
                "ORDER BY 1, 2, 3, 4, 5, 6"
            )
            counts[ft.name + "_rows"] = cur.fetchall()
        warehouse.rollback()
    assert counts[batched.name] == counts[single.name]
    assert counts[batched.name + "_rows"] == counts[single.name + "_rows"]
    assert [c[0] for c in counts[batched.name]] == [
        "DONE",
        "DONE_WITH_REJECTS",
        "DONE",
        "DONE",
        "DONE_WITH_REJECTS",
        "DONE",
    ]
