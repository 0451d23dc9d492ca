"""STL_LOAD_COMMITS / SYS_LOAD_DETAIL: one row per S3 object a COPY read, with the data records scanned,
so rows loaded per file = lines_scanned - rejected rows of that file (AWS "STL_LOAD_COMMITS",
"SYS_LOAD_DETAIL"); MANIFEST entries that are missing (AWS "Using a manifest to specify data files")."""

from __future__ import annotations

import json

import psycopg2
import pytest

from tests.conftest import DATA, put

WEATHER = (DATA / "csv" / "seattle-weather.csv").read_text().splitlines(keepends=True)
HEADER, WEATHER_ROWS = WEATHER[0], WEATHER[1:]
# weather varchar(4): 'drizzle' (7 bytes) is rejected with 1204, 'rain'/'sun'/'snow'/'fog' load.
DDL = "date date, precipitation float8, temp_max float8, temp_min float8, wind float8, weather varchar(4)"


def _parts(s3, bucket: str, prefix: str, count: int) -> dict[str, list[str]]:
    """Split the real Seattle weather file into ``count`` objects (each with the header line)."""
    size = len(WEATHER_ROWS) // count + 1
    parts = {}
    for index in range(count):
        rows = WEATHER_ROWS[index * size : (index + 1) * size]
        url = put(s3, bucket, f"{prefix}part-{index}.csv", HEADER + "".join(rows))
        parts[url] = rows
    return parts


def _per_file(cur) -> dict[str, tuple[int, int]]:
    """{filename: (lines_scanned, rejected rows of that file)} for the last COPY of this session."""
    cur.execute(
        "select trim(c.filename), c.lines_scanned,"
        " (select count(*) from stl_load_errors e where e.query = c.query and e.filename = c.filename)"
        " from stl_load_commits c where c.query = pg_last_copy_id() order by 1"
    )
    return {name: (scanned, rejected) for name, scanned, rejected in cur.fetchall()}


def _expected(rows: list[str]) -> tuple[int, int]:
    rejected = sum(1 for row in rows if row.rstrip("\n").endswith(",drizzle"))
    return len(rows), rejected


def test_manifest_copy_counts_per_file_add_up_to_pg_last_copy_count(cur, s3, bucket, table_name):
    parts = _parts(s3, bucket, "weather/", 3)
    manifest = {"entries": [{"url": url, "mandatory": True} for url in parts]}
    url = put(s3, bucket, "weather.manifest", json.dumps(manifest))
    cur.execute(f"create table {table_name} ({DDL})")
    cur.execute(f"copy {table_name} from '{url}' iam_role default csv ignoreheader 1 maxerror 1000 manifest")
    per_file = _per_file(cur)
    assert per_file == {u: _expected(rows) for u, rows in parts.items()}
    assert all(rejected > 0 for _, rejected in per_file.values())
    cur.execute("select pg_last_copy_count()")
    (copied,) = cur.fetchone()
    assert copied == sum(scanned - rejected for scanned, rejected in per_file.values())
    cur.execute(f"select count(*) from {table_name}")
    assert cur.fetchone() == (copied,)
    assert copied == len(WEATHER_ROWS) - sum(r for _, r in per_file.values())


def test_prefix_copy_counts_per_file_and_sys_load_detail(cur, s3, bucket, table_name):
    parts = _parts(s3, bucket, "w/", 2)
    put(s3, bucket, "other/ignored.csv", HEADER)
    cur.execute(f"create table {table_name} ({DDL})")
    cur.execute(f"copy {table_name} from 's3://{bucket}/w/' iam_role default csv ignoreheader 1 maxerror 1000")
    per_file = _per_file(cur)
    assert per_file == {u: _expected(rows) for u, rows in parts.items()}
    cur.execute("select pg_last_copy_count()")
    assert cur.fetchone() == (sum(s - r for s, r in per_file.values()),)
    cur.execute(
        "select trim(file_name), bytes_scanned, lines_scanned, splits_scanned, trim(file_etag),"
        " file_last_modified is not null, start_time <= end_time, record_time = end_time"
        " from sys_load_detail where query_id = pg_last_copy_id() order by 1"
    )
    detail = cur.fetchall()
    for (name, size, scanned, splits, etag, modified, ordered, recorded), url in zip(detail, parts, strict=True):
        head = s3.head_object(Bucket=bucket, Key=url.split("/", 3)[3])
        assert (name, size, scanned, splits) == (url, head["ContentLength"], len(parts[url]), 1)
        assert etag == head["ETag"].strip('"') and modified and ordered and recorded


def test_failed_copy_records_the_files_read_and_survives_rollback(connect, s3, bucket, table_name):
    parts = _parts(s3, bucket, "f/", 2)
    first_url = next(iter(parts))
    first_drizzle = next(i for i, row in enumerate(parts[first_url]) if row.rstrip().endswith(",drizzle"))
    conn = connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"create table {table_name} ({DDL})")
        conn.commit()
        with pytest.raises(psycopg2.errors.InternalError_):
            cur.execute(f"copy {table_name} from 's3://{bucket}/f/' iam_role default csv ignoreheader 1")
        conn.rollback()
        # The COPY stopped at the first rejected row of the first object; the second was never read.
        assert _per_file(cur) == {first_url: (first_drizzle + 1, 1)}


def test_stl_load_commits_has_the_aws_columns(cur):
    cur.execute(
        "select column_name, data_type, character_maximum_length from information_schema.columns"
        " where table_schema = 'public' and table_name = 'stl_load_commits' order by ordinal_position"
    )
    assert cur.fetchall() == [
        ("userid", "integer", None),
        ("query", "integer", None),
        ("slice", "integer", None),
        ("name", "character", 256),
        ("filename", "character", 256),
        ("byte_offset", "integer", None),
        ("lines_scanned", "integer", None),
        ("errors", "integer", None),
        ("curtime", "timestamp without time zone", None),
        ("status", "integer", None),
        ("file_format", "character", 16),
        ("is_partial", "integer", None),
        ("start_offset", "bigint", None),
        ("copy_job_id", "bigint", None),
    ]
    cur.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'public' and table_name = 'sys_load_detail' order by ordinal_position"
    )
    assert [r[0] for r in cur.fetchall()] == [
        "user_id", "query_id", "file_name", "bytes_scanned", "lines_scanned", "record_time", "splits_scanned",
        "start_time", "end_time", "file_etag", "file_last_modified",
    ]  # fmt: skip


def test_manifest_entry_is_a_whole_key_not_a_prefix(cur, s3, bucket, table_name):
    put(s3, bucket, "k/a.txt", "1\n")
    put(s3, bucket, "k/a.txt.old", "99\n")
    url = put(s3, bucket, "k.manifest", json.dumps({"entries": [{"url": f"s3://{bucket}/k/a.txt"}]}))
    cur.execute(f"create table {table_name} (a int)")
    cur.execute(f"copy {table_name} from '{url}' iam_role default manifest")
    cur.execute(f"select a from {table_name}")
    assert cur.fetchall() == [(1,)]
    assert _per_file(cur) == {f"s3://{bucket}/k/a.txt": (1, 0)}


@pytest.mark.parametrize(
    "entries",
    [[], [{"url": "s3://{bucket}/none/a.txt"}, {"url": "s3://{bucket}/none/b.txt", "mandatory": False}]],
    ids=["empty", "all-missing-optional"],
)
def test_manifest_with_no_existing_file_fails(cur, s3, bucket, table_name, entries):
    entries = [{**e, "url": e["url"].format(bucket=bucket)} for e in entries]
    url = put(s3, bucket, "none.manifest", json.dumps({"entries": entries}))
    cur.execute(f"create table {table_name} (a int)")
    with pytest.raises(psycopg2.errors.InternalError_, match="no files found") as info:
        cur.execute(f"copy {table_name} from '{url}' iam_role default manifest")
    assert info.value.pgcode == "XX000"


def test_manifest_missing_mandatory_entry_fails(cur, s3, bucket, table_name):
    put(s3, bucket, "mm/a.txt", "1\n")
    entries = [{"url": f"s3://{bucket}/mm/a.txt"}, {"url": f"s3://{bucket}/mm/gone.txt", "mandatory": True}]
    url = put(s3, bucket, "mm.manifest", json.dumps({"entries": entries}))
    cur.execute(f"create table {table_name} (a int)")
    with pytest.raises(psycopg2.errors.InternalError_, match=r"gone\.txt' is mandatory") as info:
        cur.execute(f"copy {table_name} from '{url}' iam_role default manifest")
    assert info.value.pgcode == "XX000"
