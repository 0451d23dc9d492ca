"""MAXERROR, STL_LOAD_ERRORS, SYS_LOAD_* views, session functions, transactions (AWS "STL_LOAD_ERRORS",
"COPY parameter reference" MAXERROR, "PG_LAST_COPY_COUNT", "PG_LAST_COPY_ID")."""

from __future__ import annotations

import datetime

import psycopg2
import pytest

from tests.conftest import put

FAILED = "Load into table '{}' failed.  Check 'stl_load_errors' system table for details."
# Two bad rows: line 2 (invalid digit in an integer) and line 4 (value too long for varchar(5)).
DATA = "1|ok\n2x|bad digit\n3|fine\n4|much too long\n5|good\n"


def _setup(cur, table):
    cur.execute(f"create table {table} (id int not null, name varchar(5))")


def _errors(
    cur,
    columns=(
        "line_number, trim(colname), trim(type), trim(col_length), trim(raw_field_value), err_code, trim(err_reason)"
    ),
):
    cur.execute(f"select {columns} from stl_load_errors where query = pg_last_copy_id() order by line_number")
    return cur.fetchall()


def test_rows_up_to_maxerror_are_skipped_and_recorded(connect, s3, bucket, table_name):
    url = put(s3, bucket, "errs.txt", DATA)
    conn = connect()
    with conn.cursor() as cur:
        _setup(cur, table_name)
        cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror 2")  # at the limit: loads
        assert cur.rowcount == 3
        cur.execute(f"select id from {table_name} order by id")
        assert cur.fetchall() == [(1,), (3,), (5,)]
        assert _errors(cur) == [
            (2, "id", "int4", "", "2x", 1207, "Invalid digit, Value 'x', Pos 1, Type: Integer"),
            (
                4,
                "name",
                "varchar",
                "5",
                "much too long",
                1204,
                "String length exceeds DDL length (13 > 5 bytes)",
            ),
        ]
        cur.execute(
            "select trim(filename), trim(raw_line), position, slice, tbl > 0 from stl_load_errors"
            " where query = pg_last_copy_id() order by line_number"
        )
        assert cur.fetchall()[0] == (url, "2x|bad digit", 1, 0, True)
        cur.execute("select pg_last_copy_count()")
        assert cur.fetchone() == (3,)
    assert any("3 record(s) loaded successfully" in n for n in conn.notices)
    assert any("2 record(s) could not be loaded" in n for n in conn.notices)


def test_above_maxerror_fails_with_redshift_message_and_loads_nothing(connect, s3, bucket, table_name):
    url = put(s3, bucket, "errs.txt", DATA)
    conn = connect()
    with conn.cursor() as cur:
        _setup(cur, table_name)
        with pytest.raises(psycopg2.errors.InternalError_) as info:
            cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror as 1")
        assert info.value.pgerror.strip() == "ERROR:  " + FAILED.format(table_name)
        assert info.value.pgcode == "XX000"
        cur.execute(f"select count(*) from {table_name}")
        assert cur.fetchone() == (0,)
        assert [row[0] for row in _errors(cur)] == [2, 4]
        cur.execute("select pg_last_copy_count()")
        assert cur.fetchone() == (0,)


def test_default_maxerror_is_zero(connect, s3, bucket, table_name):
    url = put(s3, bucket, "errs.txt", DATA)
    with connect().cursor() as cur:
        _setup(cur, table_name)
        with pytest.raises(psycopg2.errors.InternalError_, match=r"failed\.  Check 'stl_load_errors'"):
            cur.execute(f"copy {table_name} from '{url}' iam_role default")
        assert [row[0] for row in _errors(cur)] == [2]


def test_copy_in_rolled_back_transaction_keeps_load_errors(connect, s3, bucket, table_name):
    url = put(s3, bucket, "errs.txt", DATA)
    conn = connect(autocommit=False)
    with conn.cursor() as cur:
        _setup(cur, table_name)
        conn.commit()
        cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror 5")
        assert cur.rowcount == 3
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        conn.rollback()
        cur.execute(f"select count(*) from {table_name}")
        assert cur.fetchone() == (0,)
        assert len(_errors(cur)) == 2  # written on a separate connection: they survive the rollback
        cur.execute("select pg_last_copy_count()")
        assert cur.fetchone() == (3,)
    conn.rollback()


def test_failed_copy_aborts_the_client_transaction(connect, s3, bucket, table_name):
    url = put(s3, bucket, "errs.txt", DATA)
    conn = connect(autocommit=False)
    with conn.cursor() as cur:
        _setup(cur, table_name)
        cur.execute(f"insert into {table_name} values (42, 'pre')")
        with pytest.raises(psycopg2.errors.InternalError_):
            cur.execute(f"copy {table_name} from '{url}' iam_role default")
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("select 1")
        conn.rollback()
        cur.execute(f"select to_regclass('{table_name}') is null")
        assert cur.fetchone() == (True,)
        assert [row[0] for row in _errors(cur)] == [2]  # pg_last_copy_id() still names the failed COPY
    conn.rollback()


def test_copy_is_atomic_with_the_rest_of_the_transaction(connect, s3, bucket, table_name):
    url = put(s3, bucket, "ok.txt", "1|a\n2|b\n")
    conn = connect(autocommit=False)
    with conn.cursor() as cur:
        _setup(cur, table_name)
        cur.execute(f"create table {table_name}_mng (loaded int)")
        cur.execute(f"insert into {table_name}_mng values (0)")
        conn.commit()
        cur.execute(f"copy {table_name} from '{url}' iam_role default")
        cur.execute(f"update {table_name}_mng set loaded = pg_last_copy_count()")
        conn.commit()
    other = connect()
    with other.cursor() as cur:
        cur.execute(f"select (select count(*) from {table_name}), (select loaded from {table_name}_mng)")
        assert cur.fetchone() == (2, 2)


def test_line_numbers_count_the_header_and_csv_records(connect, s3, bucket, table_name):
    url = put(s3, bucket, "h.csv", 'id,name\n1,"mu\nl"\nx,y\n')
    with connect().cursor() as cur:
        _setup(cur, table_name)
        cur.execute(f"copy {table_name} from '{url}' iam_role default csv ignoreheader 1 maxerror 1")
        assert [row[0] for row in _errors(cur)] == [4]


def test_json_errors(connect, s3, bucket, table_name):
    url = put(s3, bucket, "bad.json", '{"id": 1, "name": "a"}\n{"id": "zz", "name": "b"}\n{"id": 3, "name": \n')
    with connect().cursor() as cur:
        _setup(cur, table_name)
        cur.execute(f"copy {table_name} from '{url}' iam_role default json 'auto' maxerror 5")
        assert cur.rowcount == 1
        assert [(row[0], row[5]) for row in _errors(cur)] == [(2, 1207), (3, 1216)]


def test_sys_load_views(connect, s3, bucket, table_name):
    url = put(s3, bucket, "errs.txt", DATA)
    with connect().cursor() as cur:
        _setup(cur, table_name)
        cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror 10")
        cur.execute(
            "select trim(file_name), line_number, trim(column_name), trim(column_type), error_code, trim(error_message)"
            " from sys_load_error_detail where query_id = pg_last_copy_id() order by line_number"
        )
        rows = cur.fetchall()
        assert [(r[1], r[2], r[4]) for r in rows] == [(2, "id", 1207), (4, "name", 1204)]
        cur.execute(
            "select table_name, status, loaded_rows, error_count, source_file_count, file_format, data_source,"
            " duration >= 0 from sys_load_history where query_id = pg_last_copy_id()"
        )
        assert cur.fetchone() == (table_name, "completed", 3, 2, 1, "Text", url, True)
        with pytest.raises(psycopg2.errors.InternalError_):
            cur.execute(f"copy {table_name} from '{url}' iam_role default")
        cur.execute("select status, loaded_rows from sys_load_history where query_id = pg_last_copy_id()")
        assert cur.fetchone() == ("aborted", 0)


def test_session_functions_are_per_session(connect, s3, bucket, table_name):
    url = put(s3, bucket, "ok.txt", "1|a\n2|b\n")
    first, second = connect(), connect()
    with first.cursor() as cur1, second.cursor() as cur2:
        cur2.execute("select pg_last_copy_count(), pg_last_copy_id(), pg_last_query_id()")
        assert cur2.fetchone() == (0, -1, -1)
        _setup(cur1, table_name)
        cur1.execute(f"copy {table_name} from '{url}' iam_role default")
        cur1.execute("select pg_last_copy_count(), pg_last_copy_id(), pg_last_query_id()")
        count, copy_id, query_id = cur1.fetchone()
        assert count == 2 and copy_id > 0 and query_id == copy_id
        cur2.execute("select pg_last_copy_count(), pg_last_copy_id()")
        assert cur2.fetchone() == (0, -1)
        cur1.execute("select getdate()")
        now = cur1.fetchone()[0]
        assert isinstance(now, datetime.datetime) and now.microsecond == 0
