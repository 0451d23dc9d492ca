"""``on_schema_change`` on real files whose columns drifted: a matrix of drift kinds x policies.

Each drift kind is a slice of the real Seattle weather data set (data/csv/seattle-weather.csv)
rewritten the way a producer's change would rewrite it: a column added at the end or in the
middle, one dropped, one renamed, columns reordered, text in a numeric column, header case and
whitespace changed; and the same rows as newline-delimited JSON (COPY ``JSON 'auto'``) with a new
key holding a nested object, a dropped key, keys reordered, a key's case changed, text in a numeric
field. Each policy loads all CSV files in one run and all JSON files in another (the real claim, prepare, COPY operator
and finish steps against the Redshift stand-in, moto's S3 server and the stack's Slack receiver),
into its own table, every row tagged with its file's id; each case then asserts that file's exact
rows in the table, its register state, and the alert text where one is sent. One run per policy keeps
the matrix to a few minutes on a shared machine.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from decimal import Decimal

import pytest

from redshift_ingest import register
from redshift_ingest.config import FileType
from redshift_ingest.prepare.columns import fold
from tests.plugins.redshift_ingest.test_batch_load import BUCKET, land, run, variant
from tests.plugins.redshift_ingest.test_merge_load import COLUMNS, to_csv, weather_rows

# Each drift kind: the file's header as written, each field with the table column its values
# come from (None: a new column, values generated), and optionally a cell to spoil.
DRIFTS = {
    "unchanged": [(c, c) for c in COLUMNS],
    "added_end": [*((c, c) for c in COLUMNS), ("humidity", None)],
    "added_middle": [(c, c) for c in COLUMNS[:4]] + [("visibility", None)] + [(c, c) for c in COLUMNS[4:]],
    "dropped": [(c, c) for c in COLUMNS if c != "wind"],
    "renamed": [(c, c) for c in COLUMNS[:5]] + [("conditions", "weather")],
    "reordered": [(c, c) for c in ("weather", "date", "temp_min", "temp_max", "wind", "precipitation")],
    "type_changed": [(c, c) for c in COLUMNS],
    "header_case_space": list(
        zip((" Date", "PRECIPITATION", " temp_max ", "Temp_Min", "WIND\t", "Weather"), COLUMNS, strict=True)
    ),
}
# JSON kinds: each key of the records as written, with the table column its values come from (None:
# the new key "station", a nested object). A record's keys are matched by name, case-sensitively.
STATION = {"id": "GHCND:USW00024233", "name": "SEATTLE TACOMA AIRPORT, WA US", "area": {"state": "WA", "country": "US"}}
STATION_TEXT = json.dumps(STATION, separators=(",", ":"))  # how COPY loads a nested value into VARCHAR
JSON_DRIFTS = {
    "json_unchanged": [(c, c) for c in COLUMNS],
    "json_nested_added": [(c, c) for c in COLUMNS[:3]] + [("station", None)] + [(c, c) for c in COLUMNS[3:]],
    "json_dropped": [(c, c) for c in COLUMNS if c != "wind"],
    "json_reordered": [(c, c) for c in ("weather", "wind", "date", "temp_min", "temp_max", "precipitation")],
    "json_key_case": [(c, c) for c in COLUMNS[:5]] + [("Weather", "weather")],
    "json_type_changed": [(c, c) for c in COLUMNS],
}
NUMERIC = set(COLUMNS[1:5])
POLICIES = {
    "fail": ["fail"],
    "ignore_extra": ["ignore_extra"],
    "fill_missing": ["fill_missing"],
    "add_columns": ["add_columns"],
    "ignore_extra+fill_missing": ["ignore_extra", "fill_missing"],
    "add_columns+fill_missing": ["add_columns", "fill_missing"],
}
DONE = "DONE"
# What each policy does with each drift: DONE, or FAILED with the words its message must hold.
EXTRA = "the file has columns the table has not"
MISSING = "columns are missing"
BAD_TYPE = "precipitation"
OUTCOMES = {
    "fail": {
        "added_end": "(added [humidity])",
        "added_middle": "(added [visibility])",
        "dropped": "(missing [wind])",
        "renamed": "(added [conditions]; missing [weather])",
        "reordered": "(reordered [weather, date, temp_min, temp_max, precipitation])",
        # JSON under fail: prepare.expected_columns holds the first record's keys to the columns.
        "json_nested_added": "in the first record (added [station])",
        "json_dropped": "in the first record (missing [wind])",
        "json_key_case": "in the first record (added [Weather]; missing [weather])",
    },
    "ignore_extra": {"dropped": MISSING, "renamed": MISSING, "json_dropped": MISSING, "json_key_case": MISSING},
    "fill_missing": {
        "added_end": EXTRA,
        "added_middle": EXTRA,
        "renamed": EXTRA,
        "json_nested_added": EXTRA,
        "json_key_case": EXTRA,
    },
    # 'Weather' is not weather to JSON 'auto', and cannot be a (lower-case) column of its own.
    "add_columns": {"dropped": MISSING, "renamed": MISSING, "json_dropped": MISSING, "json_key_case": MISSING},
    "ignore_extra+fill_missing": {},
    "add_columns+fill_missing": {"json_key_case": "['Weather'] cannot become columns"},
}
ADDED = {"add_columns": {"added_end": ["humidity"], "added_middle": ["visibility"], "json_nested_added": ["station"]}}
ADDED["add_columns+fill_missing"] = {**ADDED["add_columns"], "renamed": ["conditions"]}
BAD_TYPES = ("type_changed", "json_type_changed")
_tables = itertools.count()
# The weather file type reading the same rows as newline-delimited JSON (COPY JSON 'auto').
JSON_TYPE = {"format": "json", "copy_options": {"date_format": "YYYY-MM-DD", "max_error": 0}}


def outcome(policy: str, drift: str) -> str:
    if drift in BAD_TYPES:
        return BAD_TYPE
    return OUTCOMES[policy].get(drift, DONE)


def drifted_file(drift: str, records: list[list[str]]) -> tuple[bytes, list[dict[str, str]]]:
    """The CSV of ``records`` drifted as ``drift`` says, and each row's values by header name."""
    fields = DRIFTS[drift]
    by_column = [dict(zip(COLUMNS, r, strict=True)) for r in records]
    values = [
        {fold(name): (row[source] if source else f"{fold(name)}-{i}") for name, source in fields}
        for i, row in enumerate(by_column)
    ]
    lines = [[v[fold(name)] for name, _ in fields] for v in values]
    if drift == "type_changed":
        lines[3][1] = "n/a"  # precipitation is decimal(6, 1)
    return to_csv([name for name, _ in fields], lines), values


def json_file(drift: str, records: list[list[str]]) -> tuple[bytes, list[dict[str, str]]]:
    """Newline-delimited JSON of ``records`` drifted as ``drift`` says (numbers as JSON numbers),
    and each row's values by key, as text the way COPY loads them."""
    lines, values = [], []
    for i, row in enumerate(dict(zip(COLUMNS, r, strict=True)) for r in records):
        record: dict = {}
        for name, source in JSON_DRIFTS[drift]:
            record[name] = STATION if source is None else float(row[source]) if source in NUMERIC else row[source]
        if drift == "json_type_changed" and i == 3:
            record["precipitation"] = "n/a"  # precipitation is decimal(6, 1)
        lines.append(json.dumps(record))
        values.append({name: STATION_TEXT if source is None else row[source] for name, source in JSON_DRIFTS[drift]})
    return ("\n".join(lines) + "\n").encode(), values


def expected_row(values: dict[str, str], table_columns: list[str], file_id: str) -> dict:
    parse = {"date": date.fromisoformat, "weather": str}
    out = {}
    for column in table_columns:
        raw = values.get(column)
        if column == "ingest_file_id":
            out[column] = file_id
        elif raw is None:
            out[column] = None
        else:
            out[column] = parse.get(column, Decimal if column in COLUMNS else str)(raw)
    return out


@pytest.fixture(scope="module")
def matrix(stack, settings):
    """Per policy: one run over one file of each drift kind; returns what each case checks."""
    import boto3

    from redshift_ingest.hooks.warehouse import WarehouseHook
    from redshift_ingest.register import ensure_register

    s3 = boto3.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
    ensure_register(conn, settings)
    records = weather_rows()
    results: dict = {}
    kinds = [("csv", DRIFTS, drifted_file, "csv", {}), ("json", JSON_DRIFTS, json_file, "json", JSON_TYPE)]
    try:
        for p, (policy, policies) in enumerate(POLICIES.items()):
            for k, (kind, drifts, build, suffix, changes) in enumerate(kinds):
                with conn.cursor() as cur:  # this run claims this policy's files only
                    cur.execute(f"DELETE FROM {settings.register_table.quoted}")
                conn.commit()
                if policy != "fail":
                    changes = {**changes, "on_schema_change": policies, "prepare": {"expected_columns": None}}
                ft: FileType = variant(f"weather.drift_{next(_tables)}", True, **changes)
                landed = {}
                for d, drift in enumerate(drifts):
                    body, values = build(drift, records[(p * 20 + k * 10 + d) * 8 : (p * 20 + k * 10 + d + 1) * 8])
                    obj = land(s3, conn, settings, ft, f"landing/weather/drift-{p}-{drift}.{suffix}", body)
                    landed[drift] = (obj, values)
                stack.slack.payloads.clear()
                try:
                    run(ft, settings)
                except Exception as err:  # reported by each case of this run, the other runs go on
                    conn.rollback()
                    results[policy, kind] = f"{type(err).__name__}: {err}"
                    continue
                with conn.cursor() as cur:
                    cur.execute(f"SELECT * FROM {ft.target.table.quoted} ORDER BY date")
                    names = [c[0] for c in cur.description]
                    table = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
                conn.rollback()
                alerts = [p["text"] for p in stack.slack.payloads]
                for drift, (obj, values) in landed.items():
                    row = register.get_file(conn, settings, obj.file_id)
                    conn.rollback()
                    results[policy, drift] = {
                        "file_id": obj.file_id,
                        "key": obj.key,
                        "values": values,
                        "columns": names,
                        "rows": [r for r in table if r["ingest_file_id"] == obj.file_id],
                        "register": row,
                        "alerts": [a for a in alerts if obj.key in a],
                    }
    finally:
        conn.close()
    return results


@pytest.mark.parametrize("drift", [*DRIFTS, *JSON_DRIFTS])
@pytest.mark.parametrize("policy", list(POLICIES))
def test_drift_matrix(matrix, policy, drift):
    kind = "json" if drift in JSON_DRIFTS else "csv"
    assert (policy, kind) not in matrix, f"the {policy} run of the {kind} files failed: {matrix.get((policy, kind))}"
    case = matrix[policy, drift]
    row = case["register"]
    expected = outcome(policy, drift)
    if expected == DONE:
        assert (row["status"], row["rows_loaded"], row["rows_rejected"]) == (DONE, 8, 0), row["error_message"]
        assert case["rows"] == [expected_row(v, case["columns"], case["file_id"]) for v in case["values"]]
    else:
        assert row["status"] == "FAILED" and row["loaded_at"] is None
        assert expected in row["error_message"]
        assert row["quarantine_key"] == "quarantine/" + case["key"]
        assert case["rows"] == []
        if drift in BAD_TYPES:
            assert row["rows_rejected"] == 1 and "precipitation" in row["first_error"]
    added = ADDED.get(policy, {}).get(drift)
    columns_added = [a for a in case["alerts"] if "COLUMNS_ADDED" in a]
    if added:
        assert set(added) <= set(case["columns"])
        assert len(columns_added) == 1
        assert f"added column(s) {', '.join(added)} (VARCHAR(65535)) to weather.drift_" in columns_added[0]
    else:
        assert columns_added == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"on_schema_change": ["fail", "fill_missing"]}, "fail stands alone"),
        ({"on_schema_change": ["ignore_extra", "add_columns"]}, "ignore_extra drops"),
        ({"on_schema_change": "ignore_extra"}, "prepare.expected_columns refuses every header"),
        (
            {"on_schema_change": "fill_missing", "prepare": {}, "copy_options": {"ignore_header": 0}},
            "set copy_options.ignore_header to 1",
        ),
        (
            {"on_schema_change": "add_columns", "prepare": {}, "format": "parquet", "copy_options": {}},
            "format parquet has none",
        ),
        (
            {
                "on_schema_change": "add_columns",
                "prepare": {},
                "format": "json",
                "copy_options": {"json_paths": "s3://example-bucket/paths.json"},
            },
            "a JSONPaths file names the columns itself",
        ),
        ({"on_schema_change": "add_columns", "prepare": {}, "new_column_type": "TEXT; DROP"}, "Redshift column type"),
        ({"on_schema_change": "sometimes"}, "Input should be"),
    ],
)
def test_on_schema_change_is_validated(changes, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        variant("weather.drift_config", True, **changes)


def test_the_policies_are_kept_in_order_and_the_type_upper_case():
    ft = variant(
        "weather.drift_config",
        True,
        on_schema_change=["add_columns", "fill_missing"],
        prepare={},
        new_column_type="varchar(256)",
    )
    assert ft.on_schema_change == ("add_columns", "fill_missing") and ft.new_column_type == "VARCHAR(256)"
    assert variant("weather.drift_config", True, on_schema_change="fail").on_schema_change == ("fail",)
    json_type = variant("weather.drift_config", True, **JSON_TYPE, on_schema_change="ignore_extra", prepare={})
    assert json_type.on_schema_change == ("ignore_extra",)
