"""Each supported COPY option, through psycopg2 -> stand-in -> PostgreSQL, data from moto S3."""

from __future__ import annotations

import bz2
import gzip
import json
import logging

import psycopg2
import pytest
import zstandard

from tests.conftest import load, put


def test_default_text_format(cur, s3, bucket, table_name):
    url = put(s3, bucket, "a.txt", "1|x\\y|\n2|\\N|  \n3||\n")
    # Backslash is literal without ESCAPE; \N is NULL; empty/blank VARCHAR stays as is.
    assert load(cur, table_name, "a int, b varchar(10), c varchar(5)", url, "") == (
        3,
        [(1, "x\\y", ""), (2, None, "  "), (3, "", "")],
    )


def test_delimiter_tab_and_ignoreheader(cur, s3, bucket, table_name):
    url = put(s3, bucket, "t.tsv", "id\tname\n1\tone\n2\ttwo\n")
    assert load(cur, table_name, "id int, name varchar(10)", url, "delimiter '\\t' ignoreheader 1")[1] == [
        (1, "one"),
        (2, "two"),
    ]


def test_ignoreheader_applies_per_file_of_a_prefix(cur, s3, bucket, table_name):
    for part in range(3):
        put(s3, bucket, f"load/part-{part}.csv", f"id,name\n{part},p{part}\n")
    put(s3, bucket, "other/part-9.csv", "id,name\n9,nine\n")
    loaded, rows = load(
        cur, table_name, "id int, name varchar(10)", f"s3://{bucket}/load/part-", "csv ignoreheader as 1"
    )
    assert loaded == 3
    assert rows == [(0, "p0"), (1, "p1"), (2, "p2")]


def test_prefix_loads_every_object_starting_with_it(cur, s3, bucket, table_name):
    # The key prefix custdata.txt refers to custdata.txt, custdata.txt.001, ... (loading tutorial).
    put(s3, bucket, "custdata.txt", "1\n")
    put(s3, bucket, "custdata.txt.001", "2\n")
    put(s3, bucket, "custdata.txt.002", "3\n")
    put(s3, bucket, "custdata.csv", "99\n")
    assert load(cur, table_name, "a int", f"s3://{bucket}/custdata.txt", "")[1] == [(1,), (2,), (3,)]


def test_missing_prefix_is_an_error(cur, bucket, table_name):
    cur.execute(f"create table {table_name} (a int)")
    with pytest.raises(psycopg2.errors.InternalError_, match="The specified S3 prefix 'nothing/here' does not exist"):
        cur.execute(f"copy {table_name} from 's3://{bucket}/nothing/here' iam_role default")


@pytest.mark.parametrize(
    ("option", "compress"),
    [
        ("gzip", gzip.compress),
        ("bzip2", bz2.compress),
        ("zstd", lambda data: zstandard.ZstdCompressor().compress(data)),
    ],
)
def test_compression(cur, s3, bucket, table_name, option, compress):
    data = "".join(f"{i}|row {i}\n" for i in range(1000)).encode()
    url = put(s3, bucket, f"rows.{option}", compress(data))
    loaded, rows = load(cur, table_name, "a int, b varchar(20)", url, option)
    assert loaded == 1000
    assert rows[999] == (999, "row 999")


def test_gzip_multi_member(cur, s3, bucket, table_name):
    url = put(s3, bucket, "m.gz", gzip.compress(b"1\n") + gzip.compress(b"2\n"))
    assert load(cur, table_name, "a int", url, "gzip")[1] == [(1,), (2,)]


def test_csv_quote_delimiter_and_multiline(cur, s3, bucket, table_name):
    url = put(s3, bucket, "q.csv", "1;'a;b';'line1\nline2'\n2;'it''s';x\n")
    assert load(cur, table_name, "a int, b varchar(10), c varchar(20)", url, "csv quote as '''' delimiter ';'")[1] == [
        (1, "a;b", "line1\nline2"),
        (2, "it's", "x"),
    ]


def test_format_as_csv(cur, s3, bucket, table_name):
    url = put(s3, bucket, "f.csv", '1,"a,b"\n')
    assert load(cur, table_name, "a int, b varchar(10)", url, "format as csv")[1] == [(1, "a,b")]


def test_null_as_emptyasnull_blanksasnull(cur, s3, bucket, table_name):
    url = put(s3, bucket, "n.txt", "1|NULL||   \n2|x|y|z\n")
    assert load(
        cur,
        table_name,
        "a int, b varchar(5), c varchar(5), d varchar(5)",
        url,
        "null as 'NULL' emptyasnull blanksasnull",
    )[1] == [
        (1, None, None, None),
        (2, "x", "y", "z"),
    ]


def test_empty_numeric_fields_are_null(cur, s3, bucket, table_name):
    url = put(s3, bucket, "e.txt", "1||  |\n")
    assert load(cur, table_name, "a int, b int, c numeric(5,2), d date", url, "")[1] == [(1, None, None, None)]


def test_null_as_nul_character(cur, s3, bucket, table_name):
    url = put(s3, bucket, "nul.csv", "1,\x00\n2,b\n")
    assert load(cur, table_name, "a int, b varchar(5)", url, "csv null as '\\000'")[1] == [
        (1, None),
        (2, "b"),
    ]


@pytest.mark.parametrize(
    ("options", "text", "expected"),
    [
        ("", "2008-01-01 20:00:00", "2008-01-01 20:00:00"),
        ("", "2008-01-01 20:00:00.123", "2008-01-01 20:00:00.123"),
        ("timeformat 'YYYY-MM-DD HH:MI:SS'", "2008-09-26 05:43:12", "2008-09-26 05:43:12"),
        ("timeformat 'MM/DD/YYYY HH:MI:SS'", "02/18/2008 02:36:48", "2008-02-18 02:36:48"),
        ("timeformat as 'epochsecs'", "1222408992", "2008-09-26 06:03:12"),
        ("timeformat 'epochmillisecs'", "1222408992123", "2008-09-26 06:03:12.123"),
        ("timeformat 'auto'", "2008-09-26T05:43:12", "2008-09-26 05:43:12"),
        ("timeformat 'auto'", "09/26/2008 05:43:12", "2008-09-26 05:43:12"),
        ("timeformat 'auto'", "January 12, 1992", "1992-01-12 00:00:00"),
    ],
)
def test_timeformat(cur, s3, bucket, table_name, options, text, expected):
    url = put(s3, bucket, "ts.txt", f"1|{text}\n")
    cur.execute(f"create table {table_name} (a int, ts timestamp)")
    cur.execute(f"copy {table_name} from '{url}' iam_role default {options}")
    cur.execute(f"select ts::text from {table_name}")
    assert cur.fetchone()[0] == expected


@pytest.mark.parametrize(
    ("options", "text", "expected"),
    [
        ("", "2008-01-10", "2008-01-10"),
        ("dateformat 'MM/DD/YYYY'", "01/10/2008", "2008-01-10"),
        ("dateformat as 'DD.MM.YYYY'", "10.01.2008", "2008-01-10"),
        ("dateformat 'auto'", "January 12, 1992", "1992-01-12"),
        ("dateformat 'auto'", "19920104", "1992-01-04"),
    ],
)
def test_dateformat(cur, s3, bucket, table_name, options, text, expected):
    url = put(s3, bucket, "d.txt", f"{text}\n")
    cur.execute(f"create table {table_name} (d date)")
    cur.execute(f"copy {table_name} from '{url}' iam_role default {options}")
    cur.execute(f"select d::text from {table_name}")
    assert cur.fetchone()[0] == expected


def test_timestamptz_column(cur, s3, bucket, table_name):
    url = put(s3, bucket, "tz.txt", "2020-01-01 10:00:00\n2020-01-01 10:00:00+02\n")
    cur.execute("set timezone to 'UTC'")
    assert [r[0].isoformat() for r in load(cur, table_name, "t timestamptz", url, "timeformat 'auto'")[1]] == [
        "2020-01-01T08:00:00+00:00",
        "2020-01-01T10:00:00+00:00",
    ]


def test_booleans_redshift_style(cur, s3, bucket, table_name):
    url = put(s3, bucket, "b.txt", "1|t\n2|false\n3|1\n4|0\n5|Y\n6|no\n7|TRUE\n")
    assert [r[1] for r in load(cur, table_name, "a int, b boolean", url, "")[1]] == [
        True, False, True, False, True, False, True,
    ]  # fmt: skip


def test_numeric_extra_scale_is_truncated(cur, s3, bucket, table_name):
    url = put(s3, bucket, "num.txt", "1.239\n-2.5\n")
    assert [str(r[0]) for r in load(cur, table_name, "n numeric(8,2)", url, "")[1]] == ["-2.50", "1.23"]


def test_truncatecolumns_counts_bytes(cur, s3, bucket, table_name):
    url = put(s3, bucket, "long.txt", "abcdefgh|xyz\nàéîõü|q\n")
    # VARCHAR lengths are bytes in Redshift: 'àé' is 4 bytes, so only 2 characters fit in 5 bytes.
    assert load(cur, table_name, "a varchar(5), b char(2)", url, "truncatecolumns")[1] == [
        ("abcde", "xy"),
        ("àé", "q "),  # CHAR(2) is blank-padded
    ]


def test_acceptinvchars(cur, s3, bucket, table_name):
    url = put(s3, bucket, "inv.txt", b"1|ab\xa4c\n2|ok\n")
    _loaded, rows = load(cur, table_name, "a int, b varchar(10)", url, "acceptinvchars as '^'")
    assert rows == [(1, "ab^c"), (2, "ok")]
    cur.execute(f"truncate {table_name}")
    cur.execute(f"copy {table_name} from '{url}' iam_role default acceptinvchars")
    cur.execute(f"select b from {table_name} order by a")
    assert cur.fetchall() == [("ab?c",), ("ok",)]


def test_invalid_utf8_without_acceptinvchars_is_rejected(cur, s3, bucket, table_name):
    url = put(s3, bucket, "inv2.txt", b"1|ab\xa4c\n2|ok\n")
    cur.execute(f"create table {table_name} (a int, b varchar(10))")
    cur.execute(f"copy {table_name} from '{url}' iam_role default maxerror 1")
    cur.execute("select err_code, trim(err_reason) from stl_load_errors where query = pg_last_copy_id()")
    assert cur.fetchall() == [
        (1220, "String contains invalid or unsupported UTF8 codepoints. Bad UTF8 hex sequence: a4 (error 3)")
    ]


def test_multibyte_into_char_is_rejected(cur, s3, bucket, table_name):
    url = put(s3, bucket, "mb.txt", "1|é\n")
    cur.execute(f"create table {table_name} (a int, b char(4))")
    with pytest.raises(psycopg2.errors.InternalError_):
        cur.execute(f"copy {table_name} from '{url}' iam_role default")
    cur.execute("select err_code, trim(err_reason) from stl_load_errors where query = pg_last_copy_id()")
    code, reason = cur.fetchone()
    assert code == 1220
    assert reason.startswith(
        "Multibyte character not supported for CHAR (Hint: Try using VARCHAR). Invalid char: c3 a9"
    )


def test_manifest(cur, s3, bucket, table_name):
    put(s3, bucket, "m/a.txt", "1\n")
    put(s3, bucket, "m/b.txt", "2\n")
    put(s3, bucket, "m/a.txt.bak", "99\n")
    manifest = {
        "entries": [
            {"url": f"s3://{bucket}/m/a.txt", "mandatory": True},
            {"url": f"s3://{bucket}/m/b.txt"},
            {"url": f"s3://{bucket}/m/missing.txt", "mandatory": False},
        ]
    }
    url = put(s3, bucket, "m/load.manifest", json.dumps(manifest))
    assert load(cur, table_name, "a int", url, "manifest")[1] == [(1,), (2,)]
    manifest["entries"].append({"url": f"s3://{bucket}/m/gone.txt", "mandatory": True})
    url = put(s3, bucket, "m/load2.manifest", json.dumps(manifest))
    with pytest.raises(psycopg2.errors.InternalError_, match=r"gone\.txt' is mandatory"):
        cur.execute(f"copy {table_name} from '{url}' iam_role default manifest")


def test_column_list_and_explicit_ids(cur, s3, bucket, table_name):
    cur.execute(f"create table {table_name} (id int identity(1,1), name varchar(10), n int default 7)")
    url = put(s3, bucket, "ids.txt", "alpha\nbeta\n")
    cur.execute(f"copy {table_name} (name) from '{url}' iam_role default")
    url2 = put(s3, bucket, "ids2.txt", "100|gamma|1\n")
    cur.execute(f"copy {table_name} from '{url2}' iam_role default explicit_ids")
    url3 = put(s3, bucket, "ids3.txt", "delta|2\n")
    cur.execute(f"copy {table_name} from '{url3}' iam_role default")  # identity column omitted
    cur.execute(f"select id, name, n from {table_name} order by name")
    assert cur.fetchall() == [(1, "alpha", 7), (2, "beta", 7), (3, "delta", 2), (100, "gamma", 1)]


def test_super_column_from_json(cur, s3, bucket, table_name):
    url = put(s3, bucket, "s.json", '{"id": 1, "doc": {"a": [1, 2]}, "flag": true, "price": 12.50}')
    cur.execute(f"create table {table_name} (id int, doc super, flag boolean, price numeric(6,2))")
    cur.execute(f"copy {table_name} from '{url}' iam_role default format as json 'auto'")
    cur.execute(f"select id, doc, flag, price::text from {table_name}")
    assert cur.fetchone() == (1, {"a": [1, 2]}, True, "12.50")


def test_credentials_region_and_no_op_options_accepted_and_redacted(cur, s3, bucket, table_name, caplog):
    url = put(s3, bucket, "c.txt", "1\n")
    cur.execute(f"create table {table_name} (a int)")
    with caplog.at_level(logging.INFO, logger="redshift_local"):
        cur.execute(
            f"copy {table_name} from '{url}' credentials 'aws_access_key_id=AKIAEXAMPLE;aws_secret_access_key=SeCrEt'"
            " region as 'us-west-2' compupdate off statupdate off"
        )
        cur.execute(
            f"copy {table_name} from '{url}' access_key_id 'AKIAEXAMPLE' secret_access_key 'SeCrEt'"
            " session_token 'ToKeN'"
        )
    cur.execute(f"select count(*) from {table_name}")
    assert cur.fetchone() == (2,)
    logged = caplog.text
    assert "intercepted COPY" in logged
    assert "SeCrEt" not in logged and "AKIAEXAMPLE" not in logged and "ToKeN" not in logged


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("format as avro 'auto'", "FORMAT AVRO"),
        ("lzop", "LZOP"),
        ("acceptanydate", "ACCEPTANYDATE"),
    ],
)
def test_unsupported_option_is_a_clear_error(connect, bucket, table_name, options, named):
    conn = connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"create table {table_name} (a int)")
        with pytest.raises(psycopg2.errors.FeatureNotSupported, match=f"COPY option {named} is not supported"):
            cur.execute(f"copy {table_name} from 's3://{bucket}/x' iam_role default {options}")
        # Like any failed statement, the transaction is now aborted.
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("select 1")
    conn.rollback()


def test_copy_into_missing_table(cur, bucket):
    with pytest.raises(psycopg2.errors.UndefinedTable):
        cur.execute(f"copy no_such_table from 's3://{bucket}/x' iam_role default")
