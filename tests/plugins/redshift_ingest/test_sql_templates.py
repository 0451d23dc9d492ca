"""Every SQL template renders under StrictUndefined with what the code passes, and binds its values."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from redshift_ingest import sql
from redshift_ingest.config import default_file_types, default_settings

SQL = Path(__file__).resolve().parents[3] / "include" / "sql"
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
    # copy.sql (see redshift_ingest.copy_sql.build_copy)
    "format": "csv",
    "bound": {"copy_from", "iam_role", "delimiter"},
    "flags": set(),
    "ignore_header": 1,
    "manifest": True,
    "compression": "gzip",
    "max_error": 0,
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


ALL_TEMPLATES = sorted(str(p.relative_to(SQL)) for p in SQL.rglob("*.sql"))


@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_every_template_renders(template):
    """Every file of include/sql renders under StrictUndefined once each name it uses is given (a
    quoted identifier here; what each one really receives is checked by the tests above and by the
    code that runs it): no syntax error, no name missing from the template's own text."""
    from jinja2 import meta

    environment = sql._environment()
    names: set[str] = set()
    todo = [template]
    while todo:  # the template and every template it includes
        parsed = environment.parse((SQL / todo.pop()).read_text())
        names |= meta.find_undeclared_variables(parsed)
        todo.extend(t for t in meta.find_referenced_templates(parsed) if t)
    text = sql.render(template, **dict.fromkeys(names, '"x"'))
    assert "{{" not in text and "{%" not in text
    assert text.strip(), "renders to nothing"


def test_the_copy_template_is_what_build_copy_runs():
    from redshift_ingest.config import FileType
    from redshift_ingest.copy_sql import build_copy

    ft = FileType.model_validate(
        {
            "name": "venues",
            "owner": "o",
            "source": {"prefix": "landing/venues/"},
            "target": {"table": "tickit.venue", "ddl": "ddl/tickit_venue.sql"},
            "format": "csv",
            "copy_options": {"delimiter": "|", "ignore_header": 1, "null_as": "", "empty_as_null": True},
        }
    )
    copy = build_copy(
        ft, table="stage_venues", copy_from="s3://b/m", iam_role_arn="arn", compression="gzip", manifest=True,
        columns=("venueid", "venuename"), max_error=7,
    )  # fmt: skip
    assert copy.sql.splitlines() == [
        'COPY "stage_venues" ("venueid", "venuename")',
        "FROM %(copy_from)s",
        "IAM_ROLE %(iam_role)s",
        "FORMAT AS CSV",
        "DELIMITER %(delimiter)s",
        "IGNOREHEADER 1",
        "MANIFEST",
        "GZIP",
        "NULL AS %(null_as)s",
        "EMPTYASNULL",
        "MAXERROR 7",
    ]
    assert copy.parameters == {"copy_from": "s3://b/m", "iam_role": "arn", "delimiter": "|", "null_as": ""}
