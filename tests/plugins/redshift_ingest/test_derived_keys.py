"""Keys derived from a landed key (archive, quarantine, error report, staging) always fit S3's
1,024-byte limit and the register's ``VARCHAR(1024)`` columns: against moto's S3 server, the
prepare step and the Redshift stand-in."""

from __future__ import annotations

import psycopg2
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from redshift_ingest import paths, register
from redshift_ingest.config import Settings
from redshift_ingest.paths import (
    MAX_KEY_BYTES,
    KeyTooLong,
    archive_key,
    check_key_fits,
    derived_key,
    error_report_key,
    quarantine_key,
    staged_key_root,
)
from redshift_ingest.prepare import PrepareSpec, prepare_file
from redshift_ingest.register import S3Object
from redshift_ingest.s3_objects import move_object

BUCKET = "example-landing-bucket"


def long_key(total_bytes: int, name_tail: str = "-2024-06-01.csv") -> str:
    """A landing key of exactly ``total_bytes`` UTF-8 bytes, with multi-byte characters in it."""
    start = "landing/weather/été/"
    filler = total_bytes - len(start.encode()) - len(name_tail.encode())
    return start + "ü" * (filler // 2) + "x" * (filler % 2) + name_tail


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def test_short_keys_keep_the_usual_layout(settings):
    key = "landing/weather/seattle weather 2012-2015.csv"
    assert archive_key(settings, key) == "archive/" + key
    assert quarantine_key(settings, key) == "quarantine/" + key
    assert error_report_key(settings, key) == "archive/" + key + ".load_errors.csv"
    assert error_report_key(settings, key, quarantined=True) == "quarantine/" + key + ".load_errors.csv"
    assert staged_key_root(settings.staging_prefix, key) == "staging/" + key + "/"


@pytest.mark.parametrize("size", [1000, 1017, 1024])
def test_keys_near_the_limit_are_shortened_to_fit_keeping_the_name_tail(settings, size):
    key = long_key(size)
    assert nbytes(key) == size
    for derived in (archive_key(settings, key), quarantine_key(settings, key), error_report_key(settings, key)):
        assert nbytes(derived) <= MAX_KEY_BYTES
        assert derived.startswith(("archive/landing/weather/été/", "quarantine/landing/weather/été/"))
        assert "-2024-06-01.csv" in derived  # the file name's tail survives
    assert error_report_key(settings, key).endswith(".csv.load_errors.csv")
    root = staged_key_root(settings.staging_prefix, key)
    assert root.startswith("staging/") and root.endswith("/")
    assert nbytes(f"s3://{'b' * 63}/{root}") + paths.STAGED_NAME_BYTES <= MAX_KEY_BYTES
    # Deterministic (a retry derives the same key); two keys differing anywhere derive different keys.
    assert archive_key(settings, key) == archive_key(settings, key)
    other = key.replace("ü", "u", 1)
    assert archive_key(settings, other) != archive_key(settings, key)


def test_a_key_whose_derived_keys_cannot_fit_is_refused_with_the_reason():
    roomy = Settings(landing_bucket=BUCKET)
    check_key_fits(roomy, long_key(1024))  # fits after shortening: no error
    with pytest.raises(KeyTooLong, match="S3 keys are at most 1,024 bytes"):
        check_key_fits(roomy, long_key(1025))
    cramped = Settings(landing_bucket=BUCKET, archive_prefix="a" * 1010 + "/")
    with pytest.raises(KeyTooLong, match=r"cannot be archived or quarantined: no key under prefix 'aaaa"):
        check_key_fits(cramped, long_key(1000))
    with pytest.raises(KeyTooLong):
        derived_key("p" * 1000 + "/", "landing/x.csv" * 10)


def test_a_key_near_the_limit_loads_then_archives_and_is_recorded(landing, warehouse, settings):
    """The bug: ``archive/`` + a 1,017-byte key is over S3's limit (AWS refuses it with KeyTooLongError;
    moto does not check) and over the register's ``archive_key VARCHAR(1024)`` (the stand-in refuses
    it), so a loaded file could never be archived. The derived key moves and is recorded."""
    key = "landing/weather/" + "x" * (1017 - len("landing/weather/.csv")) + ".csv"
    assert nbytes(key) == 1017 and nbytes("archive/" + key) > MAX_KEY_BYTES
    landing.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n1,2\n")
    obj = S3Object(bucket=BUCKET, key=key, size_bytes=8, etag="e1")
    register.register_object(warehouse, settings, obj, "seattle_weather", "test")
    claim = {"file_type": "seattle_weather", "selection": "all", "dag_id": "ingest_seattle_weather", "run_id": "r1"}
    assert register.claim_file(warehouse, settings, **claim).file_id == obj.file_id
    with pytest.raises(psycopg2.DataError, match="too long"):  # what the plain prefix did
        register.record_archive(warehouse, settings, obj.file_id, "archive/" + key)
    warehouse.rollback()

    hook = S3Hook(aws_conn_id=settings.aws_conn_id)
    moved = move_object(hook, BUCKET, key, archive_key(settings, key))
    assert nbytes(moved) <= MAX_KEY_BYTES and moved.endswith("xxxx.csv")
    assert hook.check_for_key(moved, bucket_name=BUCKET) and not hook.check_for_key(key, bucket_name=BUCKET)
    register.record_archive(warehouse, settings, obj.file_id, moved)
    assert register.get_file(warehouse, settings, obj.file_id)["archive_key"] == moved
    warehouse.rollback()
    report = error_report_key(settings, key)
    landing.put_object(Bucket=BUCKET, Key=report, Body=b"line,reason\n")
    assert hook.check_for_key(report, bucket_name=BUCKET) and nbytes(report) <= MAX_KEY_BYTES


def test_a_long_key_is_staged_under_a_folder_that_fits(landing, settings):
    """The prepare step stages a file with a 1,017-byte key (a UTF-8 BOM makes it stage)."""
    key = long_key(1017)
    landing.put_object(Bucket=BUCKET, Key=key, Body=b"\xef\xbb\xbfa,b\n1,2\n")
    prepared = prepare_file(landing, BUCKET, key, settings.staging_prefix, PrepareSpec("csv", header_lines=1))
    assert prepared.staged_keys and nbytes(prepared.copy_from) <= MAX_KEY_BYTES
    assert prepared.staged_keys[0].startswith(staged_key_root(settings.staging_prefix, key))
    assert prepared.staged_keys[0].endswith("-2024-06-01.csv.gz")
