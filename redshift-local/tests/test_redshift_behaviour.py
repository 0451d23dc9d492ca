"""Behaviours where the stand-in used to differ from Redshift (issue 15, items 1-7), one test each.

Sources: AWS "COPY parameter reference" (NULL AS, EMPTYASNULL), "STL_LOAD_ERRORS", "PG_LAST_COPY_COUNT",
"Using automatic recognition with DATEFORMAT and TIMEFORMAT", "Character types" (lengths in bytes),
"Serializable isolation" (error 1023), "Using a manifest to specify data files".
"""

from __future__ import annotations

import datetime
import re
import threading

import psycopg
import psycopg2
import pytest
import redshift_connector

from redshift_local import RedshiftLocal
from tests.conftest import DATA, connections, put, statement_loading

EXAMPLES = DATA / "redshift_copy_examples"


# -- 1. NULL AS '' with a trailing delimiter ----------------------------------------------------


@pytest.mark.parametrize("option", ["null as ''", "emptyasnull"])
def test_null_as_empty_with_trailing_delimiter_loads_like_emptyasnull(cur, s3, bucket, option):
    put(s3, bucket, "data/venue_noseats.txt", (EXAMPLES / "venue_noseats.txt").read_bytes())
    sql = (EXAMPLES / "r_COPY_command_examples.sql").read_text()
    cur.execute("drop table if exists venue_new")
    cur.execute(re.search(r"create table venue_new\(.*?\);", sql, re.S).group())
    statement = statement_loading("venue_noseats.txt").replace("s3://mybucket/", f"s3://{bucket}/")
    cur.execute(statement.rstrip(";") + f" {option}")
    assert cur.rowcount == 10
    cur.execute("select venueid, venuestate, venueseats from venue_new order by venueid")
    rows = cur.fetchall()
    assert rows[0] == (1, "IL", 1000) and rows[9] == (10, "TX", 1000)


# -- 2. the bookkeeping after a COPY with a rejected row holding a NUL byte ------------------------


def test_rejected_row_with_nul_byte_keeps_counts_and_error_row(cur, s3, bucket, table_name):
    url = put(s3, bucket, "nul.txt", b"1|a\n2|b\nx\x00y|c\n4|d\n5|e\n")
    cur.execute(f"create table {table_name} (id int, name varchar(5))")
    cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror 3")
    first = cur.fetchone() if cur.description else None
    assert first is None and cur.rowcount == 4
    cur.execute("select pg_last_copy_count(), pg_last_copy_id()")
    count, copy_id = cur.fetchone()
    assert count == 4
    cur.execute("select line_number, err_code, trim(raw_line) from stl_load_errors where query = %s", (copy_id,))
    assert cur.fetchall() == [(3, 1207, "x.y|c")]
    cur.execute("select sum(lines_scanned) from stl_load_commits where query = %s", (copy_id,))
    assert cur.fetchone() == (5,)
    cur.execute("select loaded_rows, error_count from sys_load_history where query_id = %s", (copy_id,))
    assert cur.fetchone() == (4, 1)


# -- 4. DATEFORMAT / TIMEFORMAT 'auto': the docs' table of recognised formats --------------------

AUTO_TIMESTAMPS = [  # "Using automatic recognition with DATEFORMAT and TIMEFORMAT", zone-less rows
    ("J2451187", "1999-01-08 00:00:00"),
    ("19960108 040809", "1996-01-08 04:08:09"),
    ("960108 040809", "1996-01-08 04:08:09"),
    ("1996.008", "1996-01-08 00:00:00"),
    ("1996-01-08 04:05:06.789", "1996-01-08 04:05:06.789"),
    ("J2345678 04:05:06.789", "1710-02-23 04:05:06.789"),
    ("2019-02-11T05:09:12.195", "2019-02-11 05:09:12.195"),
    # and rows of the "DATEFORMAT and TIMEFORMAT strings" table
    ("2008-09-26 05:43:12", "2008-09-26 05:43:12"),
    ("09/26/2008 05:43:12", "2008-09-26 05:43:12"),
    ("January 12, 1992", "1992-01-12 00:00:00"),
]
AUTO_ZONED = [  # rows with a zone: the instant, read into TIMESTAMPTZ (UTC)
    ("2019-02-11T05:09:12.195Z", "2019-02-11 05:09:12.195+00"),
    ("17 Dec 07:37:16 1997 PST", "1997-12-17 15:37:16+00"),
    ("12/17/1997 07:37:16.00 PST", "1997-12-17 15:37:16+00"),
    ("1997-12-17 07:37:16-08", "1997-12-17 15:37:16+00"),
    ("12.17.1997 07:37:16.00 PST", "1997-12-17 15:37:16+00"),
]
AUTO_DATES = [
    ("J2451187", "1999-01-08"),
    ("Jan-08-95 BC", "0095-01-08 BC"),
    ("1996.008", "1996-01-08"),
    ("19960108", "1996-01-08"),
    ("1996-01-08 04:05:06.789", "1996-01-08"),
]


def _autoload(cur, s3, bucket, table, column_type, option, values):
    url = put(s3, bucket, f"{table}.txt", "".join(f"{i}|{v}\n" for i, v in enumerate(values)))
    cur.execute(f"create table {table} (i int, v {column_type})")
    cur.execute(f"copy {table} from '{url}' iam_role default {option} 'auto'")
    assert cur.rowcount == len(values)
    cur.execute(f"set timezone = 'UTC'; select v::text from {table} order by i")
    return [r[0] for r in cur.fetchall()]


def test_timeformat_auto_recognises_the_documented_formats(cur, s3, bucket, table_name):
    loaded = _autoload(cur, s3, bucket, table_name, "timestamp", "timeformat", [v for v, _ in AUTO_TIMESTAMPS])
    assert loaded == [expected for _, expected in AUTO_TIMESTAMPS]


def test_timeformat_auto_with_zones_into_timestamptz(cur, s3, bucket, table_name):
    loaded = _autoload(cur, s3, bucket, table_name, "timestamptz", "timeformat", [v for v, _ in AUTO_ZONED])
    assert loaded == [expected for _, expected in AUTO_ZONED]


def test_dateformat_auto_recognises_the_documented_formats(cur, s3, bucket, table_name):
    loaded = _autoload(cur, s3, bucket, table_name, "date", "dateformat", [v for v, _ in AUTO_DATES])
    assert loaded == [expected for _, expected in AUTO_DATES]


def test_dateformat_auto_rejects_what_is_not_a_date(cur, s3, bucket, table_name):
    url = put(s3, bucket, "bad-dates.txt", "1|2020-02-30\n2|now\n3|tomorrow\n4|1996-01-08\n")
    cur.execute(f"create table {table_name} (i int, d date)")
    cur.execute(f"copy {table_name} from '{url}' iam_role default dateformat 'auto' maxerror 5")
    assert cur.rowcount == 1
    cur.execute("select line_number, err_code from stl_load_errors where query = pg_last_copy_id() order by 1")
    assert cur.fetchall() == [(1, 1205), (2, 1205), (3, 1205)]


# -- 5. types the converter did not validate; VARCHAR(n) in bytes --------------------------------


def test_invalid_time_interval_uuid_values_reject_the_row(cur, s3, bucket, table_name):
    good = "1|04:05:06|04:05:06+02|1 day|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n"
    data = (
        good + "2|25:99:00|04:05:06+02|1 day|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n"
        "3|04:05:06|04:05:06+02|forever|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n"
        "4|04:05:06|04:05:06+02|1 day|not-a-uuid\n"
        "5|04:05:06|bad|1 day|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n"
    )
    url = put(s3, bucket, "types.txt", data)
    cur.execute(f"create table {table_name} (i int, t time, tz timetz, d interval, u uuid)")
    cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror 10")
    assert cur.rowcount == 1
    cur.execute(f"select i, t, d from {table_name}")
    assert cur.fetchall() == [(1, datetime.time(4, 5, 6), datetime.timedelta(days=1))]
    cur.execute(
        "select line_number, trim(colname), trim(raw_field_value) from stl_load_errors"
        " where query = pg_last_copy_id() order by 1"
    )
    assert cur.fetchall() == [(2, "t", "25:99:00"), (3, "d", "forever"), (4, "u", "not-a-uuid"), (5, "tz", "bad")]


def test_varchar_length_is_in_bytes_for_insert(cur, table_name):
    cur.execute(f"create table {table_name} (v varchar(4), c char(2))")
    cur.execute(f"insert into {table_name} (v) values ('abcd'), ('éé')")  # 4 bytes each
    with pytest.raises(psycopg2.errors.StringDataRightTruncation, match=r"character varying\(4\)"):
        cur.execute(f"insert into {table_name} (v) values ('ééé')")  # 3 characters, 6 bytes
    cur.execute(f"select count(*) from {table_name}")
    assert cur.fetchone() == (2,)


# -- 6. serializable isolation and error 1023; the server parameters -----------------------------


@pytest.fixture(scope="module")
def serializable(postgres, s3_server):
    """A second stand-in on the same PostgreSQL whose client sessions run SERIALIZABLE, like Redshift."""
    with RedshiftLocal(postgres.dsn, isolation="serializable") as server:
        yield server


@pytest.fixture
def connect_serializable(serializable):
    yield from connections(serializable)


def _concurrent(connect, table_name: str, second_write: str) -> tuple:
    """Two transactions that both read ``table_name``, then each write it (the second with
    ``second_write``); the first commits. Returns the open second connection."""
    first, second = connect(autocommit=False), connect(autocommit=False)
    with first.cursor() as c1, second.cursor() as c2:
        c1.execute(f"select count(*) from {table_name}")
        c2.execute(f"select count(*) from {table_name}")
        c1.execute(f"insert into {table_name} values (2, 1)")
        c2.execute(second_write)
    first.commit()
    return second


def test_write_skew_fails_with_1023(connect_serializable, table_name):
    with connect_serializable().cursor() as cur:
        cur.execute(f"create table {table_name} (id int, n int)")
        cur.execute(f"insert into {table_name} values (1, 1)")
    second = _concurrent(connect_serializable, table_name, f"insert into {table_name} values (3, 1)")
    with pytest.raises(psycopg2.errors.InternalError_) as info:
        second.commit()  # each transaction read what the other wrote: a dangerous structure
    assert info.value.pgcode == "XX000"
    assert info.value.diag.message_primary.startswith("1023: Serializable isolation violation on table")
    second.rollback()


def test_copy_conflict_fails_with_1023(connect_serializable, s3, bucket, table_name):
    url = put(s3, bucket, "skew.txt", "9|9\n")
    with connect_serializable().cursor() as cur:
        cur.execute(f"create table {table_name} (id int, n int)")
    second = _concurrent(connect_serializable, table_name, f"copy {table_name} from '{url}' iam_role default")
    with pytest.raises(psycopg2.errors.InternalError_, match=r"^1023: Serializable isolation violation"):
        second.commit()
    second.rollback()


@pytest.mark.parametrize("mode", ["default", "serializable"])
def test_server_parameters_are_redshifts(connect, connect_serializable, mode):
    conn = connect() if mode == "default" else connect_serializable()
    assert conn.get_parameter_status("server_version") == "8.0.2"
    assert conn.server_version == 80002
    assert conn.get_parameter_status("server_encoding") == "UNICODE"
    assert conn.get_parameter_status("standard_conforming_strings") == "off"
    assert conn.get_parameter_status("TimeZone") == "UTC"
    with conn.cursor() as cur:
        cur.execute("show transaction_isolation")
        assert cur.fetchone() == ("read committed" if mode == "default" else "serializable",)
        cur.execute("select %s, 'a\\\\b'", ("x\\y",))  # backslash escapes in literals, as on Redshift
        assert cur.fetchone() == ("x\\y", "a\\b")


def test_session_functions_inside_a_serializable_transaction(connect_serializable, s3, bucket, table_name):
    url = put(s3, bucket, "ser.txt", "1|a\n2|b\n")
    conn = connect_serializable(autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"create table {table_name} (id int, name varchar(5))")
        cur.execute(f"copy {table_name} from '{url}' iam_role default")
        cur.execute("select pg_last_copy_count(), pg_last_copy_id() > 0")
        assert cur.fetchone() == (2, True)
        conn.rollback()
        cur.execute("select pg_last_copy_count()")  # kept after the rollback, from the separate connection
        assert cur.fetchone() == (2,)
    conn.rollback()


# -- 7. COPY through the extended query protocol -------------------------------------------------


def test_copy_with_bound_parameter_through_psycopg3(redshift_local, s3, bucket, table_name):
    url = put(s3, bucket, "ext.txt", "1|a\n2|b\n")
    with psycopg.connect(redshift_local.dsn(), autocommit=True) as conn:
        conn.execute(f"create table {table_name} (id int, name varchar(5))")
        result = conn.execute(f"copy {table_name} from %s iam_role default delimiter %s", [url, "|"])
        assert result.rowcount == 2
        assert conn.execute("select pg_last_copy_count()").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InternalError_, match="does not exist"):
            conn.execute(f"copy {table_name} from %s iam_role default", [f"s3://{bucket}/nothing/"])
        assert conn.execute(f"select count(*) from {table_name}").fetchone() == (2,)


def test_copy_through_redshift_connector(redshift_local, s3, bucket, table_name):
    url = put(s3, bucket, "rc.txt", "1|a\n2|b\n3|c\n")
    conn = redshift_connector.connect(
        host=redshift_local.host,
        port=redshift_local.port,
        database="postgres",
        user="postgres",
        password="x",
        ssl=False,  # the stand-in speaks plain TCP (no TLS)
    )
    try:
        cursor = conn.cursor()
        cursor.execute(f"create table {table_name} (id int, name varchar(5)) diststyle even")
        cursor.execute(f"copy {table_name} from '{url}' iam_role default")
        cursor.execute(f"select count(*), pg_last_copy_count() from {table_name}")
        assert tuple(cursor.fetchone()) == (3, 3)
        conn.rollback()
        cursor.execute("select to_regclass(%s) is null", (table_name,))
        assert cursor.fetchone()[0] is True  # the COPY was part of the rolled-back transaction
    finally:
        conn.close()


def test_concurrent_sessions_are_independent(connect, s3, bucket, table_name):
    url = put(s3, bucket, "conc.txt", "".join(f"{i}|n{i}\n" for i in range(200)))
    with connect().cursor() as cur:
        cur.execute(f"create table {table_name} (id int, name varchar(8))")
    results: list[int] = []

    def load() -> None:
        with connect().cursor() as cur:
            cur.execute(f"copy {table_name} from '{url}' iam_role default")
            cur.execute("select pg_last_copy_count()")
            results.append(cur.fetchone()[0])

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200, 200, 200]
