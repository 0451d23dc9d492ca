"""COPY options and formats added for issue 15: FIXEDWIDTH, REMOVEQUOTES, FILLRECORD, IGNOREBLANKLINES,
ENCODING, ROUNDEC, LZOP (refused), STL_REPLACEMENTS, FORMAT AS PARQUET / ORC (AWS "COPY parameter
reference", "COPY examples", "COPY from columnar data formats", "STL_REPLACEMENTS")."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal

import psycopg2
import pyarrow as pa
import pyarrow.csv
import pyarrow.orc
import pyarrow.parquet as pq
import pytest

from tests.conftest import DATA, load, put

WEATHER_CSV = DATA / "csv" / "seattle-weather.csv"
WEATHER_DDL = "date date, precipitation float8, temp_max float8, temp_min float8, wind float8, weather varchar(8)"
# "Load VENUE from a fixed-width data file" (COPY examples): the sample file and its spec.
VENUE_FW = (
    "1  Toyota Park              Bridgeview  IL0\n"
    "2  Columbus Crew Stadium    Columbus    OH0\n"
    "3  RFK Stadium              Washington  DC0\n"
    "4  CommunityAmerica BallparkKansas City KS0\n"
    "5  Gillette Stadium         Foxborough  MA68756\n"
)


def test_fixedwidth_venue_example(cur, s3, bucket, table_name):
    url = put(s3, bucket, "venue_fw.txt", VENUE_FW)
    ddl = "venueid smallint, venuename varchar(100), venuecity varchar(30), venuestate char(2), venueseats integer"
    spec = "fixedwidth 'venueid:3,venuename:25,venuecity:12,venuestate:2,venueseats:6'"
    loaded, rows = load(cur, table_name, ddl, url, spec)
    assert loaded == 5
    assert [(r[0], r[1].rstrip(), r[2].rstrip(), r[3], r[4]) for r in rows] == [
        (1, "Toyota Park", "Bridgeview", "IL", 0),
        (2, "Columbus Crew Stadium", "Columbus", "OH", 0),
        (3, "RFK Stadium", "Washington", "DC", 0),
        (4, "CommunityAmerica Ballpark", "Kansas City", "KS", 0),
        (5, "Gillette Stadium", "Foxborough", "MA", 68756),
    ]
    assert rows[0][1] == "Toyota Park" + " " * 14  # the field is taken as is: its padding stays


def test_fixedwidth_with_delimiter_is_refused(cur, s3, bucket, table_name):
    url = put(s3, bucket, "fw.txt", "1 a\n")
    cur.execute(f"create table {table_name} (a int, b varchar(2))")
    with pytest.raises(psycopg2.errors.SyntaxError, match="FIXEDWIDTH"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default fixedwidth 'a:2,b:1' delimiter ','")


def test_removequotes(cur, s3, bucket, table_name):
    url = put(s3, bucket, "rq.txt", '1|"a|b"|\'c\'\n2|"open|x\n3|plain|""\n')
    loaded, rows = load(cur, table_name, "id int, a varchar(5), b varchar(5)", url, "removequotes maxerror 1")
    assert loaded == 2
    assert rows == [(1, "a|b", "c"), (3, "plain", "")]
    cur.execute("select line_number, err_code from stl_load_errors where query = pg_last_copy_id()")
    assert cur.fetchall() == [(2, 1214)]


def test_fillrecord(cur, s3, bucket, table_name):
    url = put(s3, bucket, "fill.txt", "1|a|5\n2|b\n3\n")
    ddl = "id int, name varchar(5), n int"
    assert load(cur, table_name, ddl, url, "fillrecord") == (3, [(1, "a", 5), (2, "b", None), (3, "", None)])
    url = put(s3, bucket, "fill2.txt", "4\n")
    cur.execute(f"copy {table_name} from '{url}' iam_role default fillrecord emptyasnull")
    cur.execute(f"select name from {table_name} where id = 4")
    assert cur.fetchone() == (None,)


def test_ignoreblanklines(cur, s3, bucket, table_name):
    url = put(s3, bucket, "blank.txt", "1|a\n\n2|b\n\n")
    assert load(cur, table_name, "id int, name varchar(5)", url, "ignoreblanklines") == (2, [(1, "a"), (2, "b")])
    cur.execute("select lines_scanned from stl_load_commits where query = pg_last_copy_id()")
    assert cur.fetchone() == (2,)  # skipped blank lines are not records
    with pytest.raises(psycopg2.errors.InternalError_):
        cur.execute(f"copy {table_name} from '{url}' iam_role default")  # without it: a record, rejected
    cur.execute("select line_number, err_code from stl_load_errors where query = pg_last_copy_id()")
    assert cur.fetchall() == [(2, 1214)]


@pytest.mark.parametrize(
    ("encoding", "codec"), [("utf16", "utf-16"), ("utf16le", "utf-16-le"), ("utf16be", "utf-16-be")]
)
def test_encoding_utf16(cur, s3, bucket, table_name, encoding, codec):
    text = "1|Zürich\n2|日本\n"
    url = put(s3, bucket, f"{encoding}.txt", text.encode(codec))
    loaded, rows = load(cur, table_name, "id int, city varchar(10)", url, f"encoding {encoding}")
    assert (loaded, rows) == (2, [(1, "Zürich"), (2, "日本")])


def test_roundec(cur, s3, bucket, table_name):
    url = put(s3, bucket, "dec.txt", "1|1.005\n2|-2.675\n3|3.1\n")
    assert load(cur, table_name, "id int, d numeric(5,2)", url, "roundec")[1] == [
        (1, Decimal("1.01")),
        (2, Decimal("-2.68")),
        (3, Decimal("3.10")),
    ]
    cur.execute(f"truncate {table_name}")
    cur.execute(f"copy {table_name} from '{url}' iam_role default")  # the default truncates
    cur.execute(f"select d from {table_name} order by id")
    assert cur.fetchall() == [(Decimal("1.00"),), (Decimal("-2.67"),), (Decimal("3.10"),)]


def test_lzop_is_refused_with_a_reason(cur, s3, bucket, table_name):
    url = put(s3, bucket, "x.lzo", b"\x89LZO\x00")
    cur.execute(f"create table {table_name} (a int)")
    with pytest.raises(psycopg2.errors.FeatureNotSupported, match=r"LZOP.*GZIP, BZIP2 or ZSTD"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default lzop")


def test_stl_replacements_for_acceptinvchars(cur, s3, bucket, table_name):
    url = put(s3, bucket, "inv.txt", b"1|ok\n2|bad\xffbyte\n3|also\xfe\n")
    cur.execute(f"create table {table_name} (id int, s varchar(20))")
    cur.execute(f"copy {table_name} from '{url}' iam_role default acceptinvchars as '^'")
    cur.execute(f"select s from {table_name} order by id")
    assert [r[0] for r in cur.fetchall()] == ["ok", "bad^byte", "also^"]
    cur.execute(
        "select trim(filename), line_number, trim(colname), trim(raw_line) from stl_replacements"
        " where query = pg_last_copy_id() order by line_number"
    )
    assert cur.fetchall() == [(url, 2, "s", "2|bad.byte"), (url, 3, "s", "3|also.")]


# -- FORMAT AS PARQUET / ORC ----------------------------------------------------------------------


def _weather_table() -> pa.Table:
    """The real Seattle weather data set (CSV in data/) as an Arrow table."""
    return pyarrow.csv.read_csv(WEATHER_CSV)


def _parquet(table: pa.Table, **kwargs) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **kwargs)
    return sink.getvalue()


def _orc(table: pa.Table, **kwargs) -> bytes:
    sink = io.BytesIO()
    pyarrow.orc.write_table(table, sink, **kwargs)
    return sink.getvalue()


@pytest.mark.parametrize("kind", ["parquet", "orc"])
def test_columnar_weather_loads_like_the_csv(connect, s3, bucket, table_name, kind):
    weather = _weather_table()
    body = _parquet(weather, row_group_size=200) if kind == "parquet" else _orc(weather, stripe_size=4096)
    url = put(s3, bucket, f"weather.{kind}", body)
    csv_url = put(s3, bucket, "weather.csv", WEATHER_CSV.read_bytes())
    with connect().cursor() as cur:
        cur.execute(f"create table {table_name} ({WEATHER_DDL}); create table {table_name}_csv ({WEATHER_DDL})")
        cur.execute(f"copy {table_name} from '{url}' iam_role default format as {kind}")
        assert cur.rowcount == weather.num_rows == 1461
        cur.execute("select trim(file_format), lines_scanned from stl_load_commits where query = pg_last_copy_id()")
        assert cur.fetchone() == (kind.title() if kind == "parquet" else "ORC", 1461)
        cur.execute(f"copy {table_name}_csv from '{csv_url}' iam_role default csv ignoreheader 1")
        cur.execute(f"select * from {table_name} except select * from {table_name}_csv")
        assert cur.fetchall() == []
        cur.execute(f"select * from {table_name} order by date limit 1")
        assert cur.fetchone() == (datetime.date(2012, 1, 1), 0.0, 12.8, 5.0, 4.7, "drizzle")


def test_parquet_maps_columns_by_position_and_rejects_rows_under_maxerror(cur, s3, bucket, table_name):
    weather = _weather_table().rename_columns(["a", "b", "c", "d", "e", "f"])  # names do not matter
    url = put(s3, bucket, "w.parquet", _parquet(weather, row_group_size=500))
    cur.execute(f"create table {table_name} ({WEATHER_DDL.replace('varchar(8)', 'varchar(4)')})")
    cur.execute(f"copy {table_name} from '{url}' iam_role default format as parquet maxerror 1000")
    drizzle = weather.column("f").to_pylist().count("drizzle")
    assert cur.rowcount == 1461 - drizzle
    cur.execute("select count(*), min(err_code), max(err_code) from stl_load_errors where query = pg_last_copy_id()")
    assert cur.fetchone() == (drizzle, 1204, 1204)


def test_parquet_column_count_must_match(cur, s3, bucket, table_name):
    url = put(s3, bucket, "two.parquet", _parquet(pa.table({"a": [1], "b": ["x"]})))
    cur.execute(f"create table {table_name} (a int, b varchar(5), c int)")
    with pytest.raises(psycopg2.errors.InternalError_, match="Unmatched number of columns"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default format as parquet")


def test_parquet_nested_columns_serializetojson(cur, s3, bucket, table_name):
    data = pa.table({"id": [1, 2], "tags": [["a", "b"], []], "attrs": [{"k": 1, "v": "x"}, None]})
    url = put(s3, bucket, "nested.parquet", _parquet(data))
    cur.execute(f"create table {table_name} (id int, tags varchar(100), attrs super)")
    with pytest.raises(psycopg2.errors.InternalError_, match="SERIALIZETOJSON"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default format as parquet")
    cur.execute(f"copy {table_name} from '{url}' iam_role default format as parquet serializetojson")
    cur.execute(f"select id, tags, attrs from {table_name} order by id")
    rows = cur.fetchall()
    assert [(r[0], json.loads(r[1])) for r in rows] == [(1, ["a", "b"]), (2, [])]
    assert rows[0][2] == {"k": 1, "v": "x"} and rows[1][2] is None


def test_parquet_refuses_text_options(cur, s3, bucket, table_name):
    url = put(s3, bucket, "x.parquet", _parquet(pa.table({"a": [1]})))
    cur.execute(f"create table {table_name} (a int)")
    with pytest.raises(psycopg2.errors.SyntaxError, match="PARQUET cannot be used with"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default format as parquet ignoreheader 1")


def test_not_a_parquet_file_fails_the_copy(cur, s3, bucket, table_name):
    url = put(s3, bucket, "fake.parquet", "id,name\n1,x\n")
    cur.execute(f"create table {table_name} (a int, b varchar(5))")
    with pytest.raises(psycopg2.errors.InternalError_, match="not a valid Parquet file"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default format as parquet")
