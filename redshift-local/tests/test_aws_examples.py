"""The AWS Redshift COPY examples and the Getting Started TICKIT load, run through the stand-in.

Each test uploads the sample file shipped in ``data/`` to moto, runs the documented statement
(bucket name replaced) and checks the outcome AWS documents.
"""

from __future__ import annotations

import re

import psycopg2
import pytest

from tests.conftest import DATA, put, statement_loading

EXAMPLES = DATA / "redshift_copy_examples"
CATEGORY_DDL = (
    "create table category(catid smallint not null distkey sortkey, catgroup varchar(10),"
    " catname varchar(10), catdesc varchar(50))"
)
CATEGORY_ROWS_CSV = [
    (12, "Shows", "Musicals", "Musical theatre"),
    (13, "Shows", "Plays", 'All "non-musical" theatre'),
    (14, "Shows", "Opera", 'All opera, light, and "rock" opera'),
    (15, "Concerts", "Classical", "All symphony, concerto, and choir concerts"),
]
CATEGORY_ROWS_JSON = [
    (1, "Sports", "MLB", "Major League Baseball"),
    (2, "Sports", "NHL", "National Hockey League"),
    (3, "Sports", "NFL", "National Football League"),
    (4, "Sports", "NBA", "National Basketball Association"),
]


def _with_bucket(statement: str, bucket: str) -> str:
    return statement.replace("s3://mybucket/", f"s3://{bucket}/")


@pytest.fixture
def category(connect):
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("drop table if exists category")
        cur.execute(CATEGORY_DDL)
    yield conn
    with conn.cursor() as cur:
        cur.execute("drop table if exists category")


def _rows(conn, sql="select * from category order by catid"):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_load_category_from_csv(category, s3, bucket):
    put(s3, bucket, "data/category_csv.txt", (EXAMPLES / "category_csv.txt").read_bytes())
    with category.cursor() as cur:
        cur.execute(_with_bucket(statement_loading("category_csv.txt", contains="csv;"), bucket))
        assert cur.rowcount == 4
    assert _rows(category) == CATEGORY_ROWS_CSV


def test_load_category_from_csv_with_quote_as(category, s3, bucket):
    # The example loads the '%'-quoted variant under the same key name.
    put(s3, bucket, "data/category_csv.txt", (EXAMPLES / "category_csv_quote_pct.txt").read_bytes())
    with category.cursor() as cur:
        cur.execute(_with_bucket(statement_loading("category_csv.txt", contains="quote as"), bucket))
    assert _rows(category) == CATEGORY_ROWS_CSV


def test_comma_delimited_without_csv_fails_as_documented(category, s3, bucket):
    # "If you load the file using the DELIMITER parameter ... the COPY command fails because some
    # input fields contain commas."
    unquoted = '12,Shows,Musicals,Musical theatre\n14,Shows,Opera,All opera, light, and "rock" opera\n'
    url = put(s3, bucket, "data/category_commas.txt", unquoted)
    with category.cursor() as cur, pytest.raises(psycopg2.errors.InternalError_) as info:
        cur.execute(f"copy category from '{url}' iam_role default delimiter ','")
    assert str(info.value).startswith("Load into table 'category' failed.  Check 'stl_load_errors'")
    assert _rows(category, "select trim(err_reason) from stl_load_errors where query = pg_last_copy_id()") == [
        ("Extra column(s) found",)
    ]
    assert _rows(category) == []


def test_load_from_json_auto(category, s3, bucket):
    put(s3, bucket, "category_object_auto.json", (EXAMPLES / "category_object_auto.json").read_bytes())
    with category.cursor() as cur:
        cur.execute(_with_bucket(statement_loading("category_object_auto.json"), bucket))
        assert cur.rowcount == 5  # the "bogus" key is ignored; "}{" without a newline is fine
    rows = _rows(category)
    assert rows[:4] == CATEGORY_ROWS_JSON
    assert rows[4] == (5, "Shows", "Musicals", "All symphony, concerto, and choir concerts")


def test_load_from_json_auto_ignorecase(category, s3, bucket):
    text = (EXAMPLES / "category_object_auto.json").read_text()
    for key in ("catdesc", "catid", "catgroup", "catname"):
        text = text.replace(f'"{key}"', '"' + {"catid": "CatID"}.get(key, "Cat" + key[3:].capitalize()) + '"')
    put(s3, bucket, "category_object_auto ignorecase.json", text)
    with category.cursor() as cur:
        cur.execute(_with_bucket(statement_loading("category_object_auto ignorecase.json"), bucket))
    assert _rows(category)[:4] == CATEGORY_ROWS_JSON


def test_json_auto_is_case_sensitive(category, s3, bucket):
    url = put(s3, bucket, "upper.json", '{"CatID": 1, "catgroup": "Sports"}')
    with category.cursor() as cur, pytest.raises(psycopg2.errors.InternalError_):
        cur.execute(f"copy category from '{url}' iam_role default json 'auto'")
    assert _rows(category, "select trim(err_reason) from stl_load_errors where query = pg_last_copy_id()") == [
        ("Missing data for not-null field",)
    ]


def test_load_from_json_with_jsonpaths(category, s3, bucket):
    put(s3, bucket, "category_object_paths.json", (EXAMPLES / "category_object_paths.json").read_bytes())
    put(s3, bucket, "category_jsonpath.json", (EXAMPLES / "category_jsonpath.json").read_bytes())
    with category.cursor() as cur:
        cur.execute(_with_bucket(statement_loading("category_object_paths.json", contains="json"), bucket))
    rows = _rows(category)
    assert rows[:4] == CATEGORY_ROWS_JSON
    assert rows[4] == (6, "Shows", "Musicals", "All symphony, concerto, and choir concerts")


def test_load_from_json_arrays_with_jsonpaths(category, s3, bucket):
    # category_array_data.json / category_array_jsonpath.json as printed on the examples page.
    data = (
        '[1,"Sports","MLB","Major League Baseball"]\n[2,"Sports","NHL","National Hockey League"]\n'
        '[3,"Sports","NFL","National Football League"]\n[4,"Sports","NBA","National Basketball Association"]\n'
        '[5,"Concerts","Classical","All symphony, concerto, and choir concerts"]\n'
    )
    put(s3, bucket, "category_array_data.json", data)
    put(s3, bucket, "category_array_jsonpath.json", '{"jsonpaths": ["$[0]", "$[1]", "$[2]", "$[3]"]}')
    with category.cursor() as cur:
        cur.execute(_with_bucket(statement_loading("category_array_data.json"), bucket))
        assert cur.rowcount == 5
    assert _rows(category)[:4] == CATEGORY_ROWS_JSON


def test_load_venue_with_default_values(connect, s3, bucket):
    put(s3, bucket, "data/venue_noseats.txt", (EXAMPLES / "venue_noseats.txt").read_bytes())
    sql = (DATA / "redshift_copy_examples" / "r_COPY_command_examples.sql").read_text()
    create = re.search(r"create table venue_new\(.*?\);", sql, re.S).group()
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("drop table if exists venue_new")
        cur.execute(create)
        cur.execute(_with_bucket(statement_loading("venue_noseats.txt"), bucket))
        assert cur.rowcount == 10
        cur.execute("select * from venue_new order by venueid")
        rows = cur.fetchall()
    assert rows[0] == (1, "Toyota Park", "Bridgeview", "IL", 1000)
    assert rows[8] == (9, "Dick's Sporting Goods Park", "Commerce City", "CO", 1000)
    assert {r[4] for r in rows} == {1000}


def test_escape_option_keeps_embedded_newlines(connect, s3, bucket):
    # nlTest2.txt of "Preparing files for COPY with the ESCAPE option" (sed output of nlTest1.txt).
    lines = ["<xml start>", "<newline characters provide>", "<line breaks at the end of each>", "<line in content>"]
    data = "\\\n".join([*lines, "</xml>|1000\n<xml>", "</xml>|2000\n"])
    url = put(s3, bucket, "data/nlTest2.txt", data)
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("create table t2_escape (c1 varchar(200), c2 int)")
        cur.execute(f"copy t2_escape from '{url}' iam_role default escape delimiter as '|'")
        cur.execute("select * from t2_escape order by 2")
        assert cur.fetchall() == [
            (
                "\n".join([*lines, "</xml>"]),
                1000,
            ),
            ("<xml>\n</xml>", 2000),
        ]
        cur.execute("truncate t2_escape")
        with pytest.raises(psycopg2.errors.InternalError_):
            cur.execute(f"copy t2_escape from '{url}' iam_role default delimiter as '|'")
        cur.execute("select trim(err_reason) from stl_load_errors where query = pg_last_copy_id()")
        assert cur.fetchall() == [("Delimiter not found",)]


def test_tickit_getting_started(connect, s3, bucket):
    """DDL verbatim from the Getting Started Guide, then the COPYs of category, venue, date, event."""
    script = (DATA / "tickit" / "tickit_ddl_and_copy.sql").read_text()
    ddl, copies = script.split("-- COPY commands from the same page")
    keys = {
        "category": ("tickit/category_pipe.txt", "category.txt", 11),
        "venue": ("tickit/venue_pipe.txt", "venue.txt", 202),
        "date": ("tickit/date2008_pipe.txt", "date.txt", 365),
        "event": ("tickit/allevents_pipe.txt", "event.txt", 8798),
    }
    for key, local, _count in keys.values():
        put(s3, bucket, key, (DATA / "tickit" / local).read_bytes())
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("drop table if exists users, venue, category, date, event, listing, sales")
        cur.execute(ddl)  # several statements in one Query, Redshift attributes included
        for statement in copies.split(";"):
            match = re.search(r"copy (\w+) from", statement)
            if not match or match.group(1) not in keys:
                continue
            table = match.group(1)
            cur.execute(statement.replace("<myBucket>", bucket).replace("<aws-region>", "us-east-1"))
            cur.execute(f"select pg_last_copy_count(), count(*) from {table}")
            assert cur.fetchone() == (keys[table][2], keys[table][2]), table
        cur.execute("select eventname, starttime from event where eventid = 1217")
        assert cur.fetchone()[1].isoformat() == "2008-01-01T20:00:00"
        cur.execute(
            "select count(*) from stl_load_errors where query > pg_last_copy_id() - 4 and query <= pg_last_copy_id()"
        )
        assert cur.fetchone() == (0,)
        cur.execute("drop table users, venue, category, date, event, listing, sales")
