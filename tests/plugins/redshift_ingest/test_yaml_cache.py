"""The parsed-YAML cache (``redshift_ingest.yaml_cache``): same data as parsing, never stale, never trusted
when others can write it, and never in the way (a broken cache is ignored)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from redshift_ingest import config, yaml_cache
from redshift_ingest.yaml_cache import ParsedYamlCache

SHIPPED = Path(__file__).resolve().parents[3] / "include"


def parse_counting(calls: list[bytes]):
    def parse(raw: bytes):
        calls.append(raw)
        return yaml.safe_load(raw)

    return parse


def test_a_second_process_reads_the_cache_instead_of_parsing(tmp_path):
    raw = (SHIPPED / "config" / "file_types" / "seattle_weather.yaml").read_bytes()
    calls: list[bytes] = []
    first = ParsedYamlCache(tmp_path / "cache")
    data = first.parse(raw, parse_counting(calls))
    first.save()
    assert calls == [raw] and data == yaml.safe_load(raw)
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "cache" / yaml_cache.FILE_NAME).stat().st_mode & 0o777 == 0o600

    second = ParsedYamlCache(tmp_path / "cache")  # as the next parse, in a fresh process
    again = second.parse(raw, parse_counting(calls))
    assert calls == [raw], "the cached data was parsed again"
    assert again == data and again is not data  # a fresh object each time: callers may change it


def test_a_changed_file_is_parsed_again(tmp_path):
    calls: list[bytes] = []
    cache = ParsedYamlCache(tmp_path)
    cache.parse(b"name: a\nretries: 1\n", parse_counting(calls))
    cache.save()
    changed = ParsedYamlCache(tmp_path).parse(b"name: a\nretries: 2\n", parse_counting(calls))
    assert changed == {"name": "a", "retries": 2} and len(calls) == 2


@pytest.mark.parametrize(
    "document",
    [
        b"day: 2026-01-01\n",  # a YAML date: JSON has none
        b"1: one\n",  # an integer key would come back as "1"
        b"x: .nan\n",
        b"x: !!set {a, b}\n",
    ],
)
def test_what_json_cannot_carry_exactly_is_not_cached(tmp_path, document):
    calls: list[bytes] = []
    cache = ParsedYamlCache(tmp_path)
    expected = yaml.safe_load(document)
    assert cache.parse(document, parse_counting(calls)) == expected or expected != expected  # NaN
    cache.save()
    ParsedYamlCache(tmp_path).parse(document, parse_counting(calls))
    assert len(calls) == 2, "parsed once, then served from the cache"


def test_types_survive_the_cache(tmp_path):
    document = b"a: 1\nb: 1.0\nc: true\nd: null\ne: '1'\nf: [1, x, {g: 2}]\n"
    cache = ParsedYamlCache(tmp_path)
    cache.parse(document, yaml.safe_load)
    cache.save()
    cached = ParsedYamlCache(tmp_path).parse(document, lambda raw: pytest.fail("parsed again"))
    assert cached == yaml.safe_load(document)
    assert [type(cached[k]) for k in "abcde"] == [int, float, bool, type(None), str]


def test_a_parse_error_propagates_and_caches_nothing(tmp_path):
    cache = ParsedYamlCache(tmp_path)
    with pytest.raises(yaml.YAMLError):
        cache.parse(b"a: [1, 2\n", yaml.safe_load)
    cache.save()
    assert not (tmp_path / yaml_cache.FILE_NAME).exists()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"format": "0/old", "entries": {}}', b"[]", b'{"format": "x"}'],
)
def test_a_corrupt_or_foreign_cache_file_is_ignored_and_replaced(tmp_path, content):
    (tmp_path / yaml_cache.FILE_NAME).write_bytes(content)
    cache = ParsedYamlCache(tmp_path)
    assert cache.parse(b"a: 1\n", yaml.safe_load) == {"a": 1}
    cache.save()
    stored = json.loads((tmp_path / yaml_cache.FILE_NAME).read_bytes())
    assert stored["format"] == yaml_cache._FORMAT and len(stored["entries"]) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_directory_others_can_write_is_not_used(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # as a world-writable temp dir: anyone could plant configs there
    cache = ParsedYamlCache(shared)
    assert cache.path is None
    assert cache.parse(b"a: 1\n", yaml.safe_load) == {"a": 1}
    cache.save()
    assert list(shared.iterdir()) == []


def test_an_unwritable_cache_directory_costs_nothing_but_the_cache(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    cache = ParsedYamlCache(not_a_dir / "cache")
    assert cache.path is None and cache.parse(b"a: 1\n", yaml.safe_load) == {"a": 1}
    cache.save()


def test_cache_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(yaml_cache.ENV_VAR, str(tmp_path / "c"))
    assert yaml_cache.cache_dir() == tmp_path / "c"
    monkeypatch.setenv(yaml_cache.ENV_VAR, "")
    assert yaml_cache.cache_dir() is None  # empty: off
    monkeypatch.delenv(yaml_cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert yaml_cache.cache_dir() == tmp_path / "xdg" / "redshift_ingest"


def test_the_shipped_configs_validate_the_same_from_the_cache(monkeypatch, tmp_path):
    """check_file_types writes the cache; a fresh process's check (a new cache object) reads it and
    finds the same file types and errors, and a config edited since is read as edited."""
    include = tmp_path / "include"
    shutil.copytree(SHIPPED, include)
    directory = include / "config" / "file_types"
    monkeypatch.setattr(config, "_yaml_cache", lambda: cache)
    cache = ParsedYamlCache(tmp_path / "cache")
    first = config.check_file_types(directory)
    assert (tmp_path / "cache" / yaml_cache.FILE_NAME).exists()

    calls: list[bytes] = []
    monkeypatch.setattr(config, "_parse_yaml", parse_counting(calls))
    cache = ParsedYamlCache(tmp_path / "cache")
    assert config.check_file_types(directory) == first and calls == []

    path = directory / "seattle_weather.yaml"
    path.write_text(path.read_text() + "retries: 1\n")
    cache = ParsedYamlCache(tmp_path / "cache")
    edited = config.check_file_types(directory)
    assert len(calls) == 1  # only the edited file was parsed
    [weather] = [ft for ft in edited.file_types if ft.name == "seattle_weather"]
    assert weather.retries == 1


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(config.ConfigError, match=r"latin1\.yaml: cannot read YAML"):
        config.load_file_type(path)


def test_a_worker_reading_its_one_config_does_not_load_the_cache(monkeypatch):
    """``deployed_file_type`` (a worker's parse, one YAML file) parses that file: loading the whole
    cache would cost more than it saves."""
    monkeypatch.setattr(config, "_yaml_cache", lambda: pytest.fail("the cache was used"))
    file_type = config.deployed_file_type("ingest_seattle_weather")
    assert file_type is not None and file_type.name == "seattle_weather"


@pytest.mark.parametrize("damaged", [5, "{not json", None])
def test_a_damaged_entry_is_parsed_again(tmp_path, damaged):
    document = b"a: 1\n"
    digest = hashlib.sha256(document).hexdigest()
    stored = {"format": yaml_cache._FORMAT, "entries": {digest: damaged}}
    (tmp_path / yaml_cache.FILE_NAME).write_text(json.dumps(stored))
    cache = ParsedYamlCache(tmp_path)
    assert cache.parse(document, yaml.safe_load) == {"a": 1}
    cache.save()
    assert ParsedYamlCache(tmp_path).parse(document, lambda raw: pytest.fail("parsed again")) == {"a": 1}
