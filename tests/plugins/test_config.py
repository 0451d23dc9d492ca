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
    load_file_type,
    load_file_types,
    load_settings,
    match_file_type,
    quote_identifier,
)

INCLUDE = Path(__file__).resolve().parents[2] / "include"
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
        ({"load_mode": "truncate"}, "load_mode", "'append' or 'replace'"),
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
    with pytest.raises(ConfigError, match="both match prefix"):
        load_file_types(include / "config/file_types")


def test_a_shared_table_is_append_only(include):
    """Two file types may load one table, but ``replace`` would delete the other's rows."""
    shared = {**GOOD, "source": {"prefix": "landing/weather-b/", "pattern": "*.csv"}}
    write(include, "weather_b", {**shared, "name": "weather_b"})
    assert {ft.name for ft in load_file_types(include / "config/file_types")} >= {"seattle_weather", "weather_b"}
    replacing = {**shared, "target": {**GOOD["target"], "on_new_version": "keep"}, "load_mode": "replace"}
    write(include, "weather_b", {**replacing, "name": "weather_b"})
    with pytest.raises(ConfigError, match=r"'seattle_weather' and 'weather_b' share table weather\.daily_observations"):
        load_file_types(include / "config/file_types")


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
