"""Every real malformed, zipped, JSON and compressed sample file through the whole DAG run.

Each case states the end state the file must reach (loaded with N rows; loaded with N rejected and
the first error; failed with message M and quarantined). N is counted from the file itself with
Python's csv/json modules, and csv-spectrum's expected parses are compared value by value. After
every case: nothing IN_PROGRESS, and the object is in exactly one of landing, archive, quarantine.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import itertools
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from redshift_ingest import register
from redshift_ingest.config import FileType, default_file_types
from redshift_ingest.dag_factory import build_dag
from redshift_ingest.register import S3Object

DATA = Path(__file__).resolve().parents[2] / "data"
SPECTRUM = DATA / "malformed/csv-spectrum"
CSVKIT = DATA / "malformed/csvkit-examples"
BUCKET = "example-landing-bucket"
_n = itertools.count()


@dataclass(frozen=True)
class Case:
    """A real file, how its file type reads it, and how it must end."""

    path: Path
    status: str  # DONE | DONE_WITH_REJECTS | FAILED
    message: str = ""  # FAILED: in error_message; DONE_WITH_REJECTS: in first_error
    rejected: int = 0
    prepare: dict = field(default_factory=dict)
    copy_options: dict = field(default_factory=dict)
    file_format: str = "csv"
    columns: tuple[str, ...] | None = None  # JSON: the target's columns
    body: bytes | None = None  # a file derived from ``path`` (e.g. its header line only)


def text_rows(raw: bytes, encoding: str) -> list[list[str]]:
    """The file's records, parsed by Python's csv module (the independent count)."""
    utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    text = raw.decode("utf-16") if utf16 else raw.decode(encoding).lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text, newline="")))


def raw_bytes(case: Case) -> bytes:
    if case.body is not None:
        return case.body
    data = case.path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(case.path) as archive:
            return archive.read(archive.namelist()[0])
    return data


def column_names(header: list[str]) -> list[str]:
    names = [re.sub(r"[^a-z0-9_]", "_", h.strip().lower()) or "col" for h in header]
    return [f"c_{n}" if not n[0].isalpha() else n for n in names]


CASES = {
    # csv-spectrum: every edge case loads, values as the expected parse says.
    **{p.stem: Case(p, "DONE") for p in sorted((SPECTRUM / "csvs").glob("*.csv"))},
    # csvkit: ragged rows, NUL, CR-only newlines, encodings, BOM, empty and header-only files.
    "ragged_rows_over_maxerror": Case(CSVKIT / "bad.csv", "FAILED", "Load into table"),
    "ragged_rows_under_maxerror": Case(
        CSVKIT / "bad.csv", "DONE_WITH_REJECTS", "Extra column(s) found", 2, copy_options={"max_error": 5}
    ),
    "nul_byte": Case(CSVKIT / "null_byte.csv", "FAILED", "NUL"),
    "cr_only_newlines": Case(CSVKIT / "mac_newlines.csv", "DONE"),
    "latin1": Case(CSVKIT / "test_latin1.csv", "DONE", prepare={"encoding": "latin-1"}),
    "utf16_little_endian": Case(CSVKIT / "test_utf16_little.csv", "DONE"),
    "utf16_big_endian": Case(CSVKIT / "test_utf16_big.csv", "DONE"),
    "utf8_bom": Case(CSVKIT / "test_utf8_bom.csv", "DONE"),
    "empty_file": Case(CSVKIT / "empty.csv", "FAILED", "empty"),
    "header_only": Case(CSVKIT / "dummy.csv", "FAILED", "header only", body=b"a,b,c\n"),
    "gzip_csv": Case(CSVKIT / "dummy.csv.gz", "DONE"),
    "bzip2_csv": Case(CSVKIT / "dummy.csv.bz2", "DONE"),
    "json_in_a_csv_folder": Case(CSVKIT / "testjson.json", "FAILED", "found JSON"),
    # zip: one member, and a zip whose name does not say so.
    "zip_one_member": Case(DATA / "zip/table.csv.zip", "DONE"),
    "zip_chunk": Case(DATA / "zip/chunk1.csv.zip", "DONE"),
    "zip_named_csv": Case(DATA / "zip/implicit-zip-named.csv", "DONE"),
    # JSON: a top-level array, and CloudTrail's {"Records": [...]} envelope, gzipped.
    "json_array": Case(DATA / "json/github_events.json", "DONE", file_format="json", columns=("id", "type", "public")),
    "cloudtrail_records": Case(
        DATA / "gzip/cloudtrail_compact.json.gz",
        "DONE",
        file_format="json",
        columns=("eventversion", "eventsource", "eventname", "awsregion"),
        prepare={"json_records_key": "Records"},
        copy_options={"json_paths": "auto ignorecase"},
    ),
}


def expected_rows(case: Case) -> list[list[str]]:
    if case.file_format == "json":
        data = json.loads(raw_bytes(case))
        return data["Records"] if isinstance(data, dict) else data
    return text_rows(raw_bytes(case), case.prepare.get("encoding", "utf-8"))[1:]


@pytest.mark.parametrize("name", sorted(CASES))
def test_file_ends_as_stated(name, landing, warehouse, settings, stack):
    case = CASES[name]
    n = next(_n)
    table = f"badfiles.t{n}"
    if case.file_format == "json":
        columns = list(case.columns)
    else:
        header = text_rows(raw_bytes(case), case.prepare.get("encoding", "utf-8")) if case.status == "DONE" else []
        columns = column_names(header[0]) if header else ["a", "b", "c"]
    with warehouse.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS badfiles")
        cur.execute(f"CREATE TABLE {table} ({', '.join(f'{c} varchar(1000)' for c in columns)})")
    warehouse.commit()

    # dag.test() takes the DAG's serialized shape from the DAG folder, so the case keeps a deployed
    # file type's name (its dag_id) and changes what that file type reads and where it loads.
    base = next(ft for ft in default_file_types() if ft.name == "seattle_weather")
    name_ = base.name
    copy_options = {"ignore_header": 1} if case.file_format == "csv" else {}
    file_type = FileType.model_validate(
        {
            **base.model_dump(),
            "source": {"prefix": f"landing/bad/{n}/", "pattern": "*"},
            # The table exists already (created above), so the DDL's CREATE TABLE IF NOT EXISTS is a no-op.
            "target": {"table": table, "ddl": "ddl/languages.sql"},
            "format": case.file_format,
            "copy_options": {**copy_options, **case.copy_options},
            "prepare": {"zip_members": "single", **case.prepare},
            "retries": 0,
        }
    )
    key = f"landing/bad/{n}/{case.path.name}"
    landing.put_object(Bucket=BUCKET, Key=key, Body=case.body if case.body is not None else case.path.read_bytes())
    head = landing.head_object(Bucket=BUCKET, Key=key)
    obj = S3Object(BUCKET, key, head["ContentLength"], head["ETag"].strip('"'))
    register.register_object(warehouse, settings, obj, name_, "test")

    build_dag(file_type, settings).test()

    row = register.get_file(warehouse, settings, obj.file_id)
    with warehouse.cursor() as cur:
        cur.execute(f"SELECT * FROM {table}")
        loaded = cur.fetchall()
    warehouse.rollback()
    keys = {o["Key"] for o in landing.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    places = [p for p in ("", "archive/", "quarantine/") if p + key in keys]

    assert row["status"] == case.status, row["error_message"]
    if case.status == "DONE":
        expected = expected_rows(case)
        assert row["rows_loaded"] == len(expected) == len(loaded)
        assert places == ["archive/"]
        if case.path.parent.name == "csvs":  # csv-spectrum: value by value, as its expected parse
            spectrum = json.loads((SPECTRUM / "json" / f"{case.path.stem}.json").read_text())
            if b"\r\n" not in case.path.read_bytes():
                # This copy of newlines_crlf.csv has LF line ends; its expected parse still says CRLF.
                spectrum = [{k: v.replace("\r\n", "\n") for k, v in d.items()} for d in spectrum]
            assert [list(r) for r in loaded] == [list(map(str, d.values())) for d in spectrum]
    elif case.status == "DONE_WITH_REJECTS":
        assert row["rows_rejected"] == case.rejected
        assert case.message in row["first_error"] and row["first_error"].startswith("line ")
        assert row["rows_loaded"] == len(expected_rows(case)) - case.rejected == len(loaded)
        assert places == ["archive/"]
    else:
        assert case.message in row["error_message"]
        assert loaded == []
        assert row["quarantine_key"] == "quarantine/" + key and places == ["quarantine/"]
    assert row["status"] not in ("NEW", "IN_PROGRESS")


def test_cases_cover_every_spectrum_file():
    assert {p.stem for p in (SPECTRUM / "csvs").glob("*.csv")} <= set(CASES)
    assert codecs.lookup("latin-1")
