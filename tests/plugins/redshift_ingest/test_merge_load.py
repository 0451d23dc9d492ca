"""``load_mode: merge`` on real files: upsert by key through the staging table, in one transaction
with the register update.

Files are slices of the real Seattle weather data set (data/csv/seattle-weather.csv), some rows
changed the way a producer's correction would change them. Each test runs the real steps (claim,
prepare, the COPY operator, finish) against the Redshift stand-in and moto's S3 server, and asserts
the exact table contents and the register state.
"""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date
from decimal import Decimal

import pytest

from redshift_ingest.config import ConfigError, FileType, load_file_type
from tests.plugins.redshift_ingest.test_batch_load import WEATHER, land, rows, run, variant

COLUMNS = ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]
_keys = itertools.count()


def weather_rows() -> list[list[str]]:
    with WEATHER.open(newline="") as f:
        return list(csv.reader(f))[1:]


def to_csv(header: list[str], records: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue().encode()


def typed(record: list[str]) -> tuple:
    """A CSV record as the table returns it."""
    d, precipitation, t_max, t_min, wind, weather, *rest = record
    return (
        date.fromisoformat(d),
        Decimal(precipitation),
        Decimal(t_max),
        Decimal(t_min),
        Decimal(wind),
        weather,
        *rest,
    )


def table(warehouse, ft: FileType, extra: str = "") -> list[tuple]:
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT {', '.join(COLUMNS)}{extra} FROM {ft.target.table.quoted} ORDER BY date")
        found = cur.fetchall()
    warehouse.rollback()
    return found


def merge_type(name: str, tagged: bool, warehouse, dedupe: bool = False, **changes) -> FileType:
    """The shipped weather file type with ``load_mode: merge`` on ``date`` into its own table; with
    ``dedupe``, the table and files have a ``revised`` column ordering versions of a day."""
    merge = {"keys": ["date"], **({"dedupe_by": "revised"} if dedupe else {})}
    extra = {"prepare": {"expected_columns": [*COLUMNS, "revised"]}} if dedupe else {}
    ft = variant(f"weather.{name}", tagged, load_mode="merge", merge=merge, **extra, **changes)
    with warehouse.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS weather")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {ft.target.table.quoted} (date date, precipitation decimal(6, 1), "
            "temp_max decimal(5, 1), temp_min decimal(5, 1), wind decimal(5, 1), weather varchar(16)"
            + (", revised integer" if dedupe else "")
            + (", ingest_file_id varchar(64)" if tagged else "")
            + ")"
        )
    warehouse.commit()
    return ft


def put(landing, warehouse, settings, ft: FileType, body: bytes):
    return land(landing, warehouse, settings, ft, f"landing/weather/merge-{next(_keys)}.csv", body)


@pytest.mark.parametrize("tagged", [True, False], ids=["file_id_column", "no_file_id_column"])
@pytest.mark.parametrize("batched", [True, False], ids=["one_batch", "two_runs"])
def test_a_second_file_updates_some_keys_and_adds_others(landing, warehouse, settings, tagged, batched):
    ft = merge_type(f"merge_{'t' if tagged else 'u'}{'b' if batched else 'r'}", tagged, warehouse)
    records = weather_rows()
    first = records[0:100]  # days 1..100
    second = [[*r[:5], "corrected"] for r in records[60:130]]  # updates days 61..100, adds 101..130
    a = put(landing, warehouse, settings, ft, to_csv(COLUMNS, first))
    if not batched:
        run(ft, settings)
    b = put(landing, warehouse, settings, ft, to_csv(COLUMNS, second))
    out = run(ft, settings)

    assert out["copy"]["failed"] == []
    expected = [typed(r) for r in first[:60] + second]
    if tagged:
        expected = [(*e, a.file_id if i < 60 else b.file_id) for i, e in enumerate(expected)]
    assert table(warehouse, ft, ", ingest_file_id" if tagged else "") == expected
    found = rows(warehouse, settings, [a, b])
    assert [(r["status"], r["rows_loaded"], r["rows_rejected"]) for r in found] == [("DONE", 100, 0), ("DONE", 70, 0)]


def test_dedupe_by_keeps_the_newest_row_of_a_key_in_the_batch_and_in_the_table(landing, warehouse, settings):
    ft = merge_type("merge_dedupe", True, warehouse, dedupe=True)
    records = weather_rows()
    header = [*COLUMNS, "revised"]
    # File a: days 1..10 at revision 2. File b (later): days 5..7 at revision 1 (older than a's),
    # days 8..12 at revision 3, and day 12 twice (revision 3 "fog", revision 4 "sun").
    a_rows = [[*r, "2"] for r in records[0:10]]
    b_rows = [[*r[:5], "drizzle", "1"] for r in records[4:7]] + [[*r[:5], "rain", "3"] for r in records[7:12]]
    b_rows += [[*records[11][:5], "sun", "4"]]
    a = put(landing, warehouse, settings, ft, to_csv(header, a_rows))
    b = put(landing, warehouse, settings, ft, to_csv(header, b_rows))

    out = run(ft, settings)

    assert out["copy"]["failed"] == [] and len(out["claimed"]) == 2
    expected = [(*typed(r[:6]), int(r[6]), a.file_id) for r in a_rows[:7]]
    expected += [(*typed(r[:6]), int(r[6]), b.file_id) for r in b_rows[3:7]]  # days 8..11
    expected += [(*typed(b_rows[-1][:6]), 4, b.file_id)]  # day 12: revision 4 of two in the file
    assert table(warehouse, ft, ", revised, ingest_file_id") == expected
    assert [r["status"] for r in rows(warehouse, settings, [a, b])] == ["DONE", "DONE"]

    # A later run with an older revision of day 9 changes nothing there; day 13 is added.
    c_rows = [[*records[8][:5], "snow", "0"], [*records[12], "5"]]
    c = put(landing, warehouse, settings, ft, to_csv(header, c_rows))
    run(ft, settings)
    after = table(warehouse, ft, ", revised, ingest_file_id")
    assert after == [*expected, (*typed(c_rows[1][:6]), 5, c.file_id)]
    assert rows(warehouse, settings, [c])[0]["rows_loaded"] == 2


def test_rows_no_merge_can_order_fail_their_file_and_the_batch_goes_on(landing, warehouse, settings):
    ft = merge_type("merge_ties", True, warehouse)
    records = weather_rows()
    good = put(landing, warehouse, settings, ft, to_csv(COLUMNS, records[0:20]))
    tied = put(landing, warehouse, settings, ft, to_csv(COLUMNS, [*records[30:40], [*records[35][:5], "fog"]]))
    no_key = put(landing, warehouse, settings, ft, to_csv(COLUMNS, [*records[50:55], ["", *records[56][1:]]]))

    out = run(ft, settings)

    found = rows(warehouse, settings, [good, tied, no_key])
    assert [r["status"] for r in found] == ["DONE", "FAILED", "FAILED"]
    assert "2 rows share a merge key (date) with another row of the file, e.g. 2012-02-05" in found[1]["error_message"]
    assert "set merge.dedupe_by" in found[1]["error_message"]
    assert "1 row(s) have no value in merge key column(s) date" in found[2]["error_message"]
    assert found[1]["quarantine_key"] == "quarantine/" + tied.key
    assert table(warehouse, ft) == [typed(r) for r in records[0:20]]
    assert out["copy"]["transactions"] == 2


def test_a_forced_reload_applies_the_file_again_as_the_newest(landing, warehouse, settings):
    ft = merge_type("merge_force", True, warehouse)
    records = weather_rows()
    a = put(landing, warehouse, settings, ft, to_csv(COLUMNS, records[0:10]))
    run(ft, settings)
    b = put(landing, warehouse, settings, ft, to_csv(COLUMNS, [[*r[:5], "corrected"] for r in records[5:15]]))
    run(ft, settings)

    out = run(ft, settings, file_id=a.file_id, force=True)

    assert out["copy"]["failed"] == []
    expected = [(*typed(r), a.file_id) for r in records[0:10]]
    expected += [(*typed([*r[:5], "corrected"]), b.file_id) for r in records[10:15]]
    assert table(warehouse, ft, ", ingest_file_id") == expected
    found = rows(warehouse, settings, [a, b])
    assert [(r["status"], r["rows_loaded"], r["attempts"]) for r in found] == [("DONE", 10, 2), ("DONE", 10, 1)]


def test_a_new_version_of_a_key_replaces_its_earlier_rows_then_merges(landing, warehouse, settings):
    """on_new_version: replace with merge: the earlier version's rows go (REPLACED), the new
    version's rows are merged; rows another file wrote stay."""
    ft = merge_type("merge_versions", True, warehouse)
    assert ft.target.on_new_version == "replace"
    records = weather_rows()
    key = "landing/weather/merge-versions.csv"
    v1 = land(landing, warehouse, settings, ft, key, to_csv(COLUMNS, records[0:10]))
    other = put(landing, warehouse, settings, ft, to_csv(COLUMNS, [[*r[:5], "other"] for r in records[8:12]]))
    run(ft, settings)
    v2 = land(landing, warehouse, settings, ft, key, to_csv(COLUMNS, records[2:6]))

    run(ft, settings)

    expected = [(*typed(r), v2.file_id) for r in records[2:6]]
    expected += [(*typed([*r[:5], "other"]), other.file_id) for r in records[8:12]]
    assert table(warehouse, ft, ", ingest_file_id") == expected
    found = rows(warehouse, settings, [v1, other, v2])
    assert [r["status"] for r in found] == ["REPLACED", "DONE", "DONE"]


@pytest.mark.parametrize(
    ("merge", "message"),
    [
        ({"load_mode": "merge"}, "load_mode merge needs merge.keys"),
        ({"merge": {"keys": ["date"]}}, "merge: applies to load_mode merge only"),
        ({"load_mode": "merge", "merge": {"keys": []}}, "keys"),
        ({"load_mode": "merge", "merge": {"keys": ["Date;--"]}}, "expected lower-case column names"),
        ({"load_mode": "merge", "merge": {"keys": ["date"], "dedupe_by": "date"}}, "is one of the keys"),
        ({"load_mode": "merge", "merge": {"keys": ["ingest_file_id"]}}, "is the file_id column"),
    ],
)
def test_merge_config_is_validated(tmp_path, merge, message):
    base = variant("weather.merge_config", True)
    data = base.model_dump(mode="json")
    data["target"]["table"] = "weather.merge_config"
    data.update(merge)
    directory = tmp_path / "config" / "file_types"
    directory.mkdir(parents=True)
    (tmp_path / "sql" / "ddl").mkdir(parents=True)
    (tmp_path / "sql" / "ddl" / "seattle_weather.sql").write_text("CREATE TABLE IF NOT EXISTS {{ target }} ();\n")
    import yaml

    path = directory / "seattle_weather.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_file_type(path)
