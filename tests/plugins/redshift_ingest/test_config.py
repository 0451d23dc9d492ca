"""File-type and settings validation: bad configs fail with the file and the field named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from redshift_ingest.config import (
    ConfigError,
    FileType,
    TableName,
    check_file_types,
    globs_intersect,
    load_file_type,
    load_file_types,
    load_settings,
    match_file_type,
    quote_identifier,
)

INCLUDE = Path(__file__).resolve().parents[3] / "include"
GOOD = yaml.safe_load((INCLUDE / "config/file_types/seattle_weather.yaml").read_text())


@pytest.fixture
def include(tmp_path) -> Path:
    """A copy of include/ to break."""
    shutil.copytree(INCLUDE, tmp_path / "include")
    return tmp_path / "include"


def write(include: Path, name: str, data: dict) -> Path:
    path = include / "config/file_types" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_configs_are_valid():
    file_types = load_file_types(INCLUDE / "config/file_types")
    assert {ft.name for ft in file_types} >= {
        "tickit_category",
        "tickit_venue",
        "tickit_date",
        "tickit_event",
        "seattle_weather",
        "stock_prices",
        "tweets",
    }
    settings = load_settings(INCLUDE / "config/settings.yaml")
    assert settings.register_table.quoted == '"public"."mng"'


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"target": {"table": "no_schema", "ddl": "ddl/seattle_weather.sql"}},
            "target.table",
            "schema.table",
        ),
        (
            {"target": {"table": 'weather."x; drop', "ddl": "ddl/seattle_weather.sql"}},
            "target.table",
            "schema.table",
        ),
        ({"format": "avro"}, "format", "'csv', 'text', 'json', 'parquet' or 'orc'"),
        ({"copy_options": {"delimiter": ";;"}}, "copy_options.delimiter", "one character"),
        ({"copy_options": {"max_error": -1}}, "copy_options.max_error", "greater than or equal to 0"),
        (
            {"copy_options": {"sql": "GZIP; DROP TABLE x"}},
            "copy_options.sql",
            "Extra inputs are not permitted",
        ),
        (
            {"copy_options": {"date_format": "YYYY'; drop"}},
            "copy_options.date_format",
            "unexpected characters",
        ),
        ({"selection": "newest"}, "selection", "'latest' or 'all'"),
        ({"load_mode": "truncate"}, "load_mode", "'append', 'replace' or 'merge'"),
        ({"source": {"prefix": "/abs/"}}, "source.prefix", "relative and end with '/'"),
        ({"tags": ["nonsense"]}, "tags", "unknown tags"),
        ({"alerts": {"email": ["not-an-address"]}}, "alerts.email.0", "should match pattern"),
        ({"owner": ""}, "owner", "at least 1 character"),
        (
            {"target": {**GOOD["target"], "file_id_column": "File ID"}},
            "target.file_id_column",
            "lower-case identifier",
        ),
        (
            {"target": {**GOOD["target"], "file_id_column": None}},
            "target.on_new_version",
            "replace needs target.file_id_column",
        ),
        ({"load_mode": "replace"}, "target.on_new_version", "applies to load_mode append"),
    ],
)
def test_invalid_field_is_named(include, change, field, message):
    path = write(include, "seattle_weather", {**GOOD, **change})
    with pytest.raises(ConfigError) as err:
        load_file_type(path)
    text = str(err.value)
    assert str(path) in text
    assert field in text
    assert message in text


def test_name_must_match_file_name(include):
    path = write(include, "seattle_weather", {**GOOD, "name": "other_name"})
    with pytest.raises(ConfigError, match="must equal the file name"):
        load_file_type(path)


def test_missing_ddl_file_is_named(include):
    path = write(include, "seattle_weather", {**GOOD, "target": {"table": "a.b", "ddl": "ddl/missing.sql"}})
    with pytest.raises(ConfigError, match=r"target\.ddl: no such file"):
        load_file_type(path)


def test_unreadable_yaml(include):
    path = include / "config/file_types/broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read YAML"):
        load_file_types(include / "config/file_types")


def test_overlapping_file_types_are_refused(include):
    write(include, "weather_copy", {**GOOD, "name": "weather_copy"})
    with pytest.raises(ConfigError, match="keys can match both") as err:
        load_file_types(include / "config/file_types")
    assert "seattle_weather.yaml: source" in str(err.value) and "weather_copy.yaml: source" in str(err.value)


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ({"prefix": "landing/weather/", "pattern": "*.json"}, False),  # same prefix, no common key
        ({"prefix": "landing/weather/2026/", "pattern": "*.csv"}, True),  # landing/weather/2026/x.csv: both
        ({"prefix": "landing/weather/raw/", "pattern": "*.txt"}, False),  # under it, but never *.csv
        ({"prefix": "landing/", "pattern": "weather/*"}, True),  # a wider prefix whose pattern reaches in
        ({"prefix": "landing/", "pattern": "*.txt"}, True),  # landing/tickit/date/x.txt is tickit_date's too
        ({"prefix": "landing/", "pattern": "[a-c]*.parquet"}, False),
    ],
)
def test_a_key_matching_two_file_types_is_refused(include, source, refused):
    write(include, "weather_more", {**GOOD, "name": "weather_more", "source": source})
    report = check_file_types(include / "config/file_types")
    mine = include / "config/file_types/weather_more.yaml"
    assert (mine in report.errors) is refused, report.errors
    if refused:
        assert "keys can match both" in report.errors[mine] and "'weather_more' ('" in report.errors[mine]
    # Both sides of a conflict are refused (which one is new is unknown); the others keep loading.
    assert bool(report.errors) is refused and len(report.errors) != 1
    assert len(report.file_types) == len(load_file_types(INCLUDE / "config/file_types")) + 1 - len(report.errors)


def test_a_prefix_outside_the_landing_prefix_is_refused(include):
    path = write(include, "weather_elsewhere", {**GOOD, "name": "weather_elsewhere", "source": {"prefix": "inbox/w/"}})
    report = check_file_types(include / "config/file_types")
    assert list(report.errors) == [path]
    assert "source.prefix: 'inbox/w/' is outside the landing prefix 'landing/'" in report.errors[path]
    assert len(report.file_types) == len(load_file_types(INCLUDE / "config/file_types"))


def test_a_broken_file_leaves_the_others_loaded(include):
    broken = include / "config/file_types/broken.yaml"
    broken.write_text("name: [unclosed\n")
    invalid = write(include, "weather_bad", {**GOOD, "name": "weather_bad", "format": "parquet"})
    report = check_file_types(include / "config/file_types")
    assert sorted(report.errors) == [broken, invalid]
    assert str(broken) in report.errors[broken] and "cannot read YAML" in report.errors[broken]
    assert "format" in report.errors[invalid]
    assert {ft.name for ft in report.file_types} == {ft.name for ft in load_file_types(INCLUDE / "config/file_types")}
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        report.raise_errors()


def test_a_shared_table_is_append_only(include):
    """Two file types may load one table, but ``replace`` would delete the other's rows."""
    shared = {**GOOD, "source": {"prefix": "landing/weather-b/", "pattern": "*.csv"}}
    write(include, "weather_b", {**shared, "name": "weather_b"})
    assert {ft.name for ft in load_file_types(include / "config/file_types")} >= {"seattle_weather", "weather_b"}
    replacing = {**shared, "target": {**GOOD["target"], "on_new_version": "keep"}, "load_mode": "replace"}
    write(include, "weather_b", {**replacing, "name": "weather_b"})
    with pytest.raises(ConfigError, match=r"shares table weather\.daily_observations with 'weather_b'"):
        load_file_types(include / "config/file_types")


@pytest.mark.parametrize(
    ("first", "second", "meet"),
    [
        ("*", "*.csv", True),
        ("*.csv", "*.json", False),
        ("*.csv.gz", "*.csv", False),
        ("*.csv*", "*.csv", True),
        ("x/*.csv", "*.json", False),
        ("[ab]*", "[bc]*", True),
        ("[a]*", "[!a]*", False),
        ("?", "", False),
        ("a?c", "*b*", True),
        ("[*]x", "*x", True),  # '[*]' is a literal star
    ],
)
def test_glob_intersection(first, second, meet):
    assert globs_intersect(first, second) is meet
    assert globs_intersect(second, first) is meet


def test_sensor_defaults_are_the_fast_mode():
    sensor = FileType.model_validate(GOOD).sensor
    assert (sensor.mode, sensor.interval_seconds) == ("deferrable", 2)
    assert FileType.model_validate(GOOD).schedule == "@continuous"
    slow = FileType.model_validate({**GOOD, "sensor": {"mode": "reschedule"}}).sensor
    assert slow.interval_seconds == 60
    with pytest.raises(ValueError, match="reschedule mode takes a worker slot"):
        FileType.model_validate({**GOOD, "sensor": {"mode": "reschedule", "poke_interval_seconds": 2}})


def test_settings_errors_name_the_field(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"landing_bucket": "Bad_Bucket", "archive_prefix": "archive"}))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "landing_bucket" in str(err.value) and "archive_prefix" in str(err.value)


def test_json_rejects_csv_options():
    with pytest.raises(ValueError, match="do not apply to format json"):
        FileType.model_validate({**GOOD, "format": "json", "copy_options": {"ignore_header": 1}})


def test_identifiers_are_validated_and_quoted():
    assert TableName.parse("tickit.event").quoted == '"tickit"."event"'
    for bad in ("Tickit.event", "a.b.c", 'a."b"', "a.b c", "1a.b"):
        with pytest.raises(ValueError):
            TableName.parse(bad)
    with pytest.raises(ValueError):
        quote_identifier('x"; drop table mng; --')


def test_key_matching_longest_prefix_wins(file_types):
    assert match_file_type("landing/tickit/event/allevents_pipe.txt", file_types).name == "tickit_event"
    assert match_file_type("landing/weather/x.csv", file_types).name == "seattle_weather"
    assert match_file_type("landing/weather/x.json", file_types) is None
    assert match_file_type("landing/unknown/x.csv", file_types) is None
