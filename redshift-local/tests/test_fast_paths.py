"""The fast load paths (``fastpath``: PostgreSQL's own COPY for the chunks it reads as Redshift does, and
the column-batch path) give exactly the per-record path's results: the same rows, the same
STL_LOAD_ERRORS rows, the same per-file counts, the same failure point under MAXERROR."""

from __future__ import annotations

import pytest

from redshift_local import fastpath, loader
from tests.conftest import DATA, put

DDL = (
    "id int8, name varchar(12), amount numeric(7,2), ts timestamp, day date, code char(3), ratio float8,"
    " small int2, note varchar(6)"
)
GOOD = '{i},"name {i}",{i}.25,2024-01-{d:02d} 12:00:00,2024-02-{d:02d},AB{c},0.{i},{s},ok\n'
ODD_ROWS = [
    "100,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N\n",  # NULL AS
    '101,"",,,,"",,,""\n',  # empty fields: NULL for non-character types, '' for character types
    '102,"a ""quoted"", name",1.5,2024-02-29 00:00:00,2024-02-29,XYZ,1e3,7,x\n',  # leap day, exponent
    "103,bad,1.5,2023-02-29 00:00:00,2023-02-29,XYZ,1,7,x\n",  # no such day: rejected
    '104,"multi\nline",2,2024-03-01 01:02:03.5,2024-03-01,ABC,2,3,y\n',  # quoted newline
    "105,ééééééé,1,2024-03-01 00:00:00,2024-03-01,ABC,1,1,z\n",  # 14 bytes > varchar(12): rejected
    "106,x,123456.1,2024-03-01 00:00:00,2024-03-01,ABC,1,1,z\n",  # numeric(7,2) overflow: rejected
    "107,x,1.999,2024-03-01 00:00:00,2024-03-01,ABC,1,99999,z\n",  # int2 overflow: rejected
    "108,x,1,2024-03-01,2024-03-01,ABC,1,1,z\n",  # TIMESTAMP without time: rejected (default TIMEFORMAT)
    "109,x,1,2024-03-01 00:00:00,2024-03-01,ABC,1,1,z,extra\n",  # extra column: rejected
    "110,x,1,2024-03-01 00:00:00,2024-03-01,ABC,1,1,\n",  # trailing empty field
    " 111 ,x, 2 ,2024-03-01 00:00:00,2024-03-01,AB ,+1,-0,z\n",  # spaces and signs
    "112,x\r\n",  # CRLF and too few columns: rejected
    "113,x,1,2024-03-01 00:00:00,2024-03-01,ABC,1,1,z",  # last line without a newline
]


def _data() -> str:
    good = [GOOD.format(i=i, d=i % 28 + 1, c=chr(65 + i % 26), s=i % 30000) for i in range(1, 60)]
    return "".join(good[:30]) + "".join(ODD_ROWS[:-1]) + "".join(good[30:]) + ODD_ROWS[-1]


def _run(cur, s3, bucket, table, body, options):
    url = put(s3, bucket, f"{table}.csv", body)
    cur.execute(f"create table {table} ({DDL})")
    try:
        cur.execute(f"copy {table} from '{url}' iam_role default {options}")
        outcome = ("ok", cur.rowcount)
    except Exception as exc:  # the failure itself is compared
        outcome = ("failed", str(exc).splitlines()[0])
        cur.connection.rollback() if not cur.connection.autocommit else None
    cur.execute(f"select * from {table} order by id, name")
    rows = cur.fetchall()
    cur.execute(
        "select line_number, trim(colname), err_code, trim(err_reason), trim(raw_field_value), trim(raw_line)"
        " from stl_load_errors where query = pg_last_copy_id() order by line_number"
    )
    errors = cur.fetchall()
    cur.execute("select lines_scanned from stl_load_commits where query = pg_last_copy_id()")
    commits = cur.fetchall()
    return outcome[0], rows, errors, commits


@pytest.mark.parametrize(
    "options",
    [
        "csv maxerror 100",
        "csv maxerror 3",  # fails part-way: the same failure point
        "csv ignoreheader 2 maxerror 100",
        "delimiter ',' maxerror 100",  # the text format with a comma
        "csv null as 'NA' maxerror 100",
    ],
)
def test_fast_paths_match_the_per_record_path(cur, s3, bucket, table_name, monkeypatch, options):
    body = _data()
    monkeypatch.setattr(loader, "_PASS_CHUNK", 700)  # many chunks, falling back part-way
    fast = _run(cur, s3, bucket, table_name + "_fast", body, options)
    monkeypatch.setattr(fastpath, "eligible", lambda spec: False)
    monkeypatch.setattr(fastpath.Passthrough, "build", classmethod(lambda cls, spec, targets: None))
    slow = _run(cur, s3, bucket, table_name + "_slow", body, options)
    assert fast == slow
    assert fast[2]  # the data set does reject rows


def test_a_clean_file_goes_through_postgres_copy(cur, s3, bucket, table_name, monkeypatch):
    seen = []
    original = fastpath.Passthrough.accepts
    monkeypatch.setattr(
        fastpath.Passthrough, "accepts", lambda self, chunk: seen.append(original(self, chunk)) or seen[-1]
    )
    lines = (DATA / "csv" / "seattle-weather.csv").read_text().splitlines(keepends=True)
    kept = [line for line in lines if "-02-29," not in line]  # a February 29 takes the Python path
    url = put(s3, bucket, "weather.csv", "".join(kept))
    cur.execute(
        f"create table {table_name} (date date, precipitation float8, temp_max float8, temp_min float8,"
        " wind float8, weather varchar(8))"
    )
    cur.execute(f"copy {table_name} from '{url}' iam_role default csv ignoreheader 1")
    assert cur.rowcount == len(kept) - 1
    assert seen and all(seen)  # every chunk went to PostgreSQL as it was
