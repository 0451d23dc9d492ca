"""Every SQL template renders under StrictUndefined with what the code passes, and binds its values."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from redshift_ingest import sql
from redshift_ingest.config import default_file_types, default_settings

SQL = Path(__file__).resolve().parents[2] / "include" / "sql"
REGISTER_TEMPLATES = sorted(p.name for p in (SQL / "register").glob("*.sql"))
LOAD_TEMPLATES = sorted(p.name for p in (SQL / "load").glob("*.sql"))


@pytest.mark.parametrize("template", REGISTER_TEMPLATES)
def test_register_templates_render(template):
    text = sql.render_register(template, default_settings(), order="ASC", rows=range(2))
    if "{{ register" in (SQL / "register" / template).read_text():
        assert '"public"."mng"' in text
    assert "{{" not in text and "{%" not in text


# What the load step passes: quoted identifiers only (values stay placeholders).
LOAD_IDENTIFIERS = {
    "target": '"weather"."daily_observations"',
    "staging": '"stage_seattle_weather"',
    "lineage": '"ingest_file_id"',
    "columns": '"date", "weather"',
    "schema": '"weather"',
    "winners": '"merge_seattle_weather"',
    "seq": '"_ingest_file_seq"',
    "keys": ['"date"'],
    "dedupe_by": '"wind"',
    "table": '"stage_seattle_weather"',
    "column": '"_ingest_file_seq"',
    "type": "INTEGER",
}


@pytest.mark.parametrize("template", LOAD_TEMPLATES)
def test_load_templates_render(template):
    text = sql.render(f"load/{template}", **LOAD_IDENTIFIERS)
    assert "{{" not in text


@pytest.mark.parametrize("file_type", default_file_types(), ids=lambda ft: ft.name)
def test_ddl_renders_with_the_quoted_target(file_type):
    text = sql.render(file_type.target.ddl, target=file_type.target.table.quoted)
    assert file_type.target.table.quoted in text
    assert "CREATE TABLE IF NOT EXISTS" in text


def test_missing_variable_fails_loudly():
    with pytest.raises(jinja2.UndefinedError):
        sql.render("register/insert_file.sql")


def test_values_are_placeholders_not_rendered():
    text = sql.render_register("insert_file.sql", default_settings())
    assert "%(file_id)s" in text and "%(s3_key)s" in text
