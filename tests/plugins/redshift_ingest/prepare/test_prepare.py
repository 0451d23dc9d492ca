"""The prepare step against moto's real S3 API, with the real sample files in ``data/``."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
import zstandard

from redshift_ingest.prepare import FileRejected, PreparedFile, PrepareSpec, cleanup_staging, prepare_file

DATA = Path(__file__).resolve().parents[4] / "data"
CSVKIT = DATA / "malformed" / "csvkit-examples"
SPECTRUM = DATA / "malformed" / "csv-spectrum"
STAGING = "staging/"

CSV1 = PrepareSpec("csv", header_lines=1)
JSON = PrepareSpec("json")


@pytest.fixture
def s3(s3_server):
    return boto3.client("s3")


@pytest.fixture
def bucket(s3) -> str:
    name = f"prepare-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def put(s3, bucket: str, key: str, data: bytes | Path) -> str:
    body = data.read_bytes() if isinstance(data, Path) else data
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def run(s3, bucket: str, data: bytes | Path, spec: PrepareSpec, key: str | None = None) -> PreparedFile:
    key = key or f"landing/{data.name if isinstance(data, Path) else 'object'}"
    return prepare_file(s3, bucket, put(s3, bucket, key, data), STAGING, spec)


def staged_bytes(s3, bucket: str, prepared: PreparedFile) -> bytes:
    """The one staged object, gunzipped (COPY ... GZIP reads the same)."""
    assert prepared.compression == "gzip"
    assert not prepared.manifest
    key = prepared.copy_from.removeprefix(f"s3://{bucket}/")
    assert prepared.staged_keys == (key,)
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def zip_bytes(members: dict[str, bytes], *, directories: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in directories:
            archive.writestr(zipfile.ZipInfo(name), b"")
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def expect_rejected(s3, bucket, data, spec, match: str, key: str | None = None) -> str:
    with pytest.raises(FileRejected, match=match) as info:
        run(s3, bucket, data, spec, key)
    assert not keys_under(s3, bucket, STAGING), "a rejected file leaves nothing staged"
    return str(info.value)


# --- zip ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["table.csv.zip", "chunk1.csv.zip", "doublequote.csv.zip", "implicit-zip-named.csv"])
def test_zip_single_member_is_staged_as_gzip_with_the_member_bytes(s3, bucket, name):
    path = DATA / "zip" / name
    with zipfile.ZipFile(path) as archive:
        (info,) = archive.infolist()
        member = archive.read(info)
    prepared = run(s3, bucket, path, CSV1)
    member_key = f"{STAGING}landing/{name}/{info.filename}.gz"
    assert prepared == PreparedFile(
        copy_from=f"s3://{bucket}/{member_key}",
        manifest=False,
        compression="gzip",
        staged_keys=(member_key,),
        detected=f"zip (1 member) -> gzip; {info.filename}: csv",
        header=prepared.header,
    )
    assert staged_bytes(s3, bucket, prepared) == member
    assert prepared.header[0].lower() in ("id", "inciso")


def test_zip_named_csv_is_recognised_by_magic_number(s3, bucket):
    prepared = run(s3, bucket, DATA / "zip" / "implicit-zip-named.csv", CSV1)
    assert prepared.detected.startswith("zip (1 member)")
    assert prepared.header == ("id", "name")
    assert staged_bytes(s3, bucket, prepared).decode() == "id,name\n1,english\n2,中国人\n"


def test_zip_several_members_single_mode_is_rejected_naming_them(s3, bucket):
    data = zip_bytes({"a.csv": (CSVKIT / "dummy.csv").read_bytes(), "b.csv": (CSVKIT / "dummy3.csv").read_bytes()})
    message = expect_rejected(s3, bucket, data, CSV1, "one member, found 2 members", "landing/two.zip")
    assert "a.csv, b.csv" in message


def test_zip_several_members_load_through_a_manifest(s3, bucket):
    members = {
        "part/a.csv": (CSVKIT / "dummy.csv").read_bytes(),
        "part/b.csv": (CSVKIT / "dummy3.csv").read_bytes(),
    }
    data = zip_bytes(
        {**members, "__MACOSX/part/._a.csv": b"\x00\x05junk", "part/.DS_Store": b"\x00junk"},
        directories=("part/",),
    )
    spec = PrepareSpec("csv", header_lines=1, expected_columns=("a", "b", "c"), zip_members="manifest")
    prepared = run(s3, bucket, data, spec, "landing/parts.zip")
    root = f"{STAGING}landing/parts.zip/"
    assert prepared.manifest is True
    assert prepared.compression == "gzip"
    assert prepared.copy_from == f"s3://{bucket}/{root}manifest.json"
    assert prepared.staged_keys == (f"{root}part/a.csv.gz", f"{root}part/b.csv.gz", f"{root}manifest.json")
    assert prepared.detected.startswith("zip (2 members) -> gzip + manifest")
    assert prepared.header == ("a", "b", "c")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{root}manifest.json")["Body"].read())
    assert manifest == {
        "entries": [
            {"url": f"s3://{bucket}/{root}part/a.csv.gz", "mandatory": True},
            {"url": f"s3://{bucket}/{root}part/b.csv.gz", "mandatory": True},
        ]
    }
    for name, original in members.items():
        body = s3.get_object(Bucket=bucket, Key=f"{root}{name}.gz")["Body"].read()
        assert gzip.decompress(body) == original
    assert sorted(keys_under(s3, bucket, STAGING)) == sorted(prepared.staged_keys)


def test_zip_members_with_different_headers_are_rejected_and_nothing_stays_staged(s3, bucket):
    data = zip_bytes(
        {
            "a.csv": (CSVKIT / "dummy.csv").read_bytes(),
            "b.csv": (CSVKIT / "dummy_col_shuffled.csv").read_bytes(),
        }
    )
    spec = PrepareSpec("csv", header_lines=1, zip_members="manifest")
    expect_rejected(s3, bucket, data, spec, r"same header, found a.csv \[a, b, c\]; b.csv \[b, c, a\]", "landing/x.zip")


def test_zip_member_problem_names_the_member(s3, bucket):
    data = zip_bytes(
        {"good.csv": (CSVKIT / "dummy.csv").read_bytes(), "bad.csv": (CSVKIT / "null_byte.csv").read_bytes()}
    )
    spec = PrepareSpec("csv", header_lines=1, zip_members="manifest")
    expect_rejected(s3, bucket, data, spec, r"zip member 'bad.csv': .*NUL", "landing/x.zip")


def test_zip_member_json_array_becomes_ndjson(s3, bucket):
    data = zip_bytes({"events.json": (DATA / "json" / "github_events.json").read_bytes()})
    prepared = run(s3, bucket, data, JSON, "landing/events.zip")
    assert prepared.detected == "zip (1 member) -> gzip; events.json: json array -> ndjson"
    assert len(staged_bytes(s3, bucket, prepared).splitlines()) == 30


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"PK\x05\x06" + b"\x00" * 18, "empty zip archive"),
        (zip_bytes({}, directories=("only-a-directory/",)), "empty zip archive: no data members"),
        (zip_bytes({"a.csv": b"a\n1\n"})[:40], "corrupt"),
        (zip_bytes({"inner.zip": zip_bytes({"a.csv": b"a\n1\n"})}), "nested zip"),
        (zip_bytes({"a.csv": b"a\n1\n", "A/../a.csv": b"a\n2\n"}), "duplicates"),
    ],
    ids=["empty-zip", "directories-only", "truncated", "nested-zip", "duplicate-names"],
)
def test_unusable_zip_archives_are_rejected(s3, bucket, data, match):
    expect_rejected(s3, bucket, data, PrepareSpec("csv", header_lines=1, zip_members="manifest"), match, "landing/z")


# --- JSON --------------------------------------------------------------------------------------


def test_json_array_becomes_ndjson(s3, bucket):
    path = DATA / "json" / "github_events.json"
    prepared = run(s3, bucket, path, JSON)
    assert prepared.detected == "json array -> ndjson -> gzip"
    assert prepared.copy_from == f"s3://{bucket}/{STAGING}landing/github_events.json/github_events.json.gz"
    lines = staged_bytes(s3, bucket, prepared).decode("utf-8").splitlines()
    assert len(lines) == 30
    records = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) for record in records)
    assert records == json.loads(path.read_text(encoding="utf-8"))
    assert prepared.header == tuple(records[0])  # the first item's keys, read before staging


def test_ndjson_passes_through(s3, bucket):
    path = DATA / "json" / "sample-tweets-100.jsonl"
    prepared = run(s3, bucket, path, JSON)
    # The header is the first record's keys, in file order (on_schema_change matches them to columns).
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert prepared == PreparedFile(
        f"s3://{bucket}/landing/sample-tweets-100.jsonl", False, None, (), "pass-through json objects", tuple(first)
    )
    assert "user" in first and isinstance(first["user"], dict)
    assert not keys_under(s3, bucket, STAGING)


def test_cloudtrail_records_envelope_is_unwrapped(s3, bucket):
    path = DATA / "gzip" / "cloudtrail_compact.json.gz"
    prepared = run(s3, bucket, path, PrepareSpec("json", json_records_key="Records"))
    assert prepared.detected == 'gzip json {"Records": [...]} -> ndjson -> gzip'
    lines = staged_bytes(s3, bucket, prepared).splitlines()
    expected = json.loads(gzip.decompress(path.read_bytes()))["Records"]
    assert [json.loads(line) for line in lines] == expected
    assert len(lines) == 6


def test_cloudtrail_without_records_key_passes_through_as_gzip(s3, bucket):
    prepared = run(s3, bucket, DATA / "gzip" / "cloudtrail_compact.json.gz", JSON)
    assert (prepared.compression, prepared.staged_keys, prepared.detected) == (
        "gzip",
        (),
        "pass-through gzip json objects",
    )


def test_json_records_key_missing_is_rejected(s3, bucket):
    data = b'{"Other": [{"a": 1}]}'
    expect_rejected(
        s3,
        bucket,
        data,
        PrepareSpec("json", json_records_key="Records"),
        "records in key 'Records', found none",
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"[]", "records in the top-level array, found none"),
        (b'[{"a": 1}, null]', r"^record 2: expected a JSON object or array, found null null$"),
        (b'[{"a": 1}, "x"]', r'^record 2: expected a JSON object or array, found string "x"$'),
        (b'[{"a": 1}, {"a": ', "^record 2: invalid JSON: parse error: premature EOF$"),
        (b"  \n\t ", "empty file"),
        (b"", "empty file"),
    ],
)
def test_bad_json_is_rejected(s3, bucket, data, match):
    expect_rejected(s3, bucket, data, JSON, match)


def test_newline_delimited_json_arrays_pass_through_unchanged(s3, bucket):
    """One JSON array per line, loaded with a JSONPaths file (AWS, COPY examples, "Load from JSON
    arrays using a JSONPaths file"): the first "[" is not one top-level array of records."""
    data = (
        b'[1,"Sports","MLB","Major League Baseball"]\n'
        b'[2,"Sports","NHL","National Hockey League"]\n'
        b'[3,"Sports","NFL","National Football League"]\n'
        b'[4,"Sports","NBA","National Basketball Association"]\n'
        b'[5,"Concerts","Classical","All symphony, concerto, and choir concerts"]\n'
    )
    prepared = run(s3, bucket, data, JSON, "landing/category_array_data.json")
    assert prepared == PreparedFile(
        f"s3://{bucket}/landing/category_array_data.json", False, None, (), "pass-through json arrays", None
    )
    assert not keys_under(s3, bucket, STAGING)
    gz = run(s3, bucket, gzip.compress(b'[null,"x"]\n' + data), JSON, "landing/arrays.json.gz")
    assert (gz.compression, gz.staged_keys, gz.detected) == ("gzip", (), "pass-through gzip json arrays")
    bom = run(s3, bucket, b"\xef\xbb\xbf" + data, JSON, "landing/bom.json")  # a rewrite keeps the lines
    assert bom.detected == "json arrays (utf-8 BOM stripped) -> gzip"
    assert staged_bytes(s3, bucket, bom) == data


def test_an_array_of_records_is_still_one_record_a_line(s3, bucket):
    prepared = run(s3, bucket, b'[[1, "a"], [2, "b"]]', JSON)
    assert staged_bytes(s3, bucket, prepared) == b'[1,"a"]\n[2,"b"]\n'


@pytest.mark.parametrize(
    "data",
    [
        b'[{"a": "\\udc00"}]',  # a lone low surrogate: no character
        b'[{"ok": 1}, {"a": "x\\udfff"}]',
    ],
)
def test_a_bad_escape_inside_a_json_string_is_a_file_rejection(s3, bucket, data):
    message = expect_rejected(s3, bucket, data, JSON, r"^record \d: invalid JSON string: an escape sequence")
    assert "UnicodeDecodeError" not in message and "surrogate pair" in message


def test_json_numbers_and_non_ascii_survive(s3, bucket):
    data = '[{"n": 1.5, "i": 9223372036854775807, "s": "中国人 ʤ", "z": null}]'.encode()
    lines = staged_bytes(s3, bucket, run(s3, bucket, data, JSON)).decode("utf-8").splitlines()
    assert lines == ['{"n":1.5,"i":9223372036854775807,"s":"中国人 ʤ","z":null}']


def test_json_integer_beyond_int64_is_rejected_not_mangled(s3, bucket):
    # Known limit of ijson's yajl2_c backend; Redshift BIGINT is int64 as well.
    expect_rejected(s3, bucket, b'[{"i": 12345678901234567890}]', JSON, "integer overflow")


# --- file type checks --------------------------------------------------------------------------


def test_json_in_a_csv_file_type_is_rejected(s3, bucket):
    spec = PrepareSpec("csv", header_lines=1, expected_columns=("a", "b"))
    expect_rejected(
        s3,
        bucket,
        DATA / "json" / "github_events.json",
        spec,
        r"expected CSV with header \[a, b\], found JSON \(first character '\['\)",
    )


def test_csv_in_a_json_file_type_is_rejected(s3, bucket):
    expect_rejected(
        s3,
        bucket,
        CSVKIT / "dummy.csv",
        JSON,
        r"expected JSON \(objects or an array\), found text \(first character 'a'\)",
    )


# --- CSV: compression, header, data ------------------------------------------------------------


def test_gzip_csv_passes_through_with_its_compression(s3, bucket):
    columns = ("DATE", "goog", "AAPL", "AMZN", "FB", "NFLX", "MSFT")  # compared case-insensitively
    prepared = run(
        s3,
        bucket,
        DATA / "gzip" / "stocks.csv.gz",
        PrepareSpec("csv", header_lines=1, expected_columns=columns),
    )
    assert prepared == PreparedFile(
        f"s3://{bucket}/landing/stocks.csv.gz",
        False,
        "gzip",
        (),
        "pass-through gzip csv",
        ("date", "GOOG", "AAPL", "AMZN", "FB", "NFLX", "MSFT"),
    )


@pytest.mark.parametrize(
    ("name", "compression"), [("dummy.csv.bz2", "bzip2"), ("dummy.csv.gz", "gzip"), ("dummy.csv", None)]
)
def test_compressed_csv_passes_through(s3, bucket, name, compression):
    prepared = run(s3, bucket, CSVKIT / name, PrepareSpec("csv", header_lines=1, expected_columns=("a", "b", "c")))
    assert (prepared.compression, prepared.staged_keys, prepared.header) == (compression, (), ("a", "b", "c"))
    assert prepared.copy_from == f"s3://{bucket}/landing/{name}"


def test_zstd_is_passed_through_or_staged(s3, bucket):
    csv_data = (DATA / "csv" / "seattle-weather.csv").read_bytes()
    packed = zstandard.ZstdCompressor().compress(csv_data)
    prepared = run(s3, bucket, packed, CSV1, "landing/weather.csv.zst")
    assert (prepared.compression, prepared.detected) == ("zstd", "pass-through zstd csv")
    events = zstandard.ZstdCompressor().compress((DATA / "json" / "github_events.json").read_bytes())
    prepared = run(s3, bucket, events, JSON, "landing/events.json.zst")
    assert prepared.detected == "zstd json array -> ndjson -> gzip"
    assert prepared.staged_keys == (f"{STAGING}landing/events.json.zst/events.json.gz",)
    assert len(staged_bytes(s3, bucket, prepared).splitlines()) == 30


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            (DATA / "gzip" / "stocks.csv.gz").read_bytes()[:-40],
            "expected valid gzip data, found a corrupt stream",
        ),
        (bz2.compress(b"a,b\n1,2\n")[:-10], "expected valid bzip2 data"),
        (b"\x1f\x8b" + b"not gzip at all", "expected valid gzip data"),
        (b"\xfd7zXZ\x00\x00" + b"\x00" * 20, "found xz"),
    ],
    ids=["truncated-gzip", "truncated-bzip2", "bad-gzip-header", "xz"],
)
def test_corrupt_or_unsupported_compression_is_rejected(s3, bucket, data, match):
    expect_rejected(s3, bucket, data, CSV1, match)


@pytest.mark.parametrize("csv_path", sorted((SPECTRUM / "csvs").glob("*.csv")), ids=lambda p: p.name)
def test_csv_spectrum_edge_cases_pass_through_with_their_header(s3, bucket, csv_path):
    expected_rows = json.loads((SPECTRUM / "json" / f"{csv_path.stem}.json").read_text(encoding="utf-8"))
    columns = tuple(expected_rows[0])
    prepared = run(s3, bucket, csv_path, PrepareSpec("csv", header_lines=1, expected_columns=columns))
    assert (prepared.detected, prepared.staged_keys, prepared.header) == ("pass-through csv", (), columns)


def test_header_mismatch_is_rejected(s3, bucket):
    spec = PrepareSpec("csv", header_lines=1, expected_columns=("a", "b", "c"))
    expect_rejected(
        s3,
        bucket,
        CSVKIT / "dummy_col_shuffled.csv",
        spec,
        r"header does not match: expected \[a, b, c\], found \[b, c, a\]",
    )


@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n  \n"], ids=["no-newline", "newline", "blank-lines"])
def test_header_only_is_rejected(s3, bucket, tail):
    header = (CSVKIT / "dummy.csv").read_bytes().splitlines()[0]  # no header-only sample exists; cut one
    expect_rejected(s3, bucket, header + tail, CSV1, "header only, no data rows")


def test_header_with_quoted_newlines_is_parsed_as_one_record(s3, bucket):
    prepared = run(s3, bucket, CSVKIT / "test_header_newline.csv", CSV1)
    assert prepared.header == ("start \t\n\x0b\x0c\r end", "b", "c")


def test_header_check_strips_quotes_whitespace_and_bom(s3, bucket):
    data = b'\xef\xbb\xbf "Foo" ,BAR\t,baz\r\n1,2,3\r\n'
    prepared = run(s3, bucket, data, PrepareSpec("csv", header_lines=1, expected_columns=("foo", "bar", "BAZ")))
    assert prepared.header == ("Foo", "BAR", "baz")
    assert staged_bytes(s3, bucket, prepared) == data[3:]


def test_empty_csv_is_rejected(s3, bucket):
    expect_rejected(s3, bucket, CSVKIT / "empty.csv", CSV1, "empty file")


def test_ragged_rows_are_left_to_copy(s3, bucket):
    prepared = run(s3, bucket, CSVKIT / "bad.csv", CSV1)  # row errors are COPY's to report (MAXERROR)
    assert prepared.detected == "pass-through csv"


def test_nul_byte_is_rejected(s3, bucket):
    expect_rejected(
        s3, bucket, CSVKIT / "null_byte.csv", CSV1, r"^line 2, column 1: a NUL \(0x00\) character; COPY ends"
    )


def test_cr_only_newlines_are_normalised_to_lf(s3, bucket):
    path = CSVKIT / "mac_newlines.csv"
    prepared = run(s3, bucket, path, CSV1)
    assert prepared.detected == "csv (CR-only newlines -> LF) -> gzip"
    assert staged_bytes(s3, bucket, prepared) == path.read_bytes().replace(b"\r", b"\n")
    assert prepared.header == ("a", "b", "c")


def test_crlf_passes_through(s3, bucket):
    assert run(s3, bucket, SPECTRUM / "csvs" / "simple_crlf.csv", CSV1).detected == "pass-through csv"


# --- encodings ---------------------------------------------------------------------------------


def test_utf8_without_bom_passes_through(s3, bucket):
    assert run(s3, bucket, CSVKIT / "test_utf8.csv", CSV1).staged_keys == ()


def test_utf8_bom_is_stripped(s3, bucket):
    path = CSVKIT / "test_utf8_bom.csv"
    prepared = run(s3, bucket, path, PrepareSpec("csv", header_lines=1, expected_columns=("foo", "bar", "baz")))
    assert prepared.detected == "csv (utf-8 BOM stripped) -> gzip"
    assert staged_bytes(s3, bucket, prepared) == path.read_bytes()[3:]


@pytest.mark.parametrize(
    ("name", "codec"), [("test_utf16_big.csv", "utf-16-be"), ("test_utf16_little.csv", "utf-16-le")]
)
def test_utf16_is_reencoded_to_utf8(s3, bucket, name, codec):
    path = CSVKIT / name
    prepared = run(s3, bucket, path, PrepareSpec("csv", header_lines=1, expected_columns=("a", "b", "c")))
    assert prepared.detected == f"csv ({codec} -> utf-8) -> gzip"
    assert (
        staged_bytes(s3, bucket, prepared).decode("utf-8")
        == path.read_bytes().decode("utf-16")
        == "a,b,c\n1,2,3\n4,5,ʤ"
    )


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_declared_legacy_encoding_is_reencoded(s3, bucket, encoding):
    prepared = run(s3, bucket, CSVKIT / "test_latin1.csv", PrepareSpec("csv", header_lines=1, encoding=encoding))
    assert prepared.detected == f"csv ({encoding} -> utf-8) -> gzip"
    assert staged_bytes(s3, bucket, prepared).decode("utf-8") == "a,b,c\n1,2,3\n4,5,©"


def test_invalid_utf8_fails_naming_offset_line_and_byte(s3, bucket):
    message = expect_rejected(s3, bucket, CSVKIT / "test_latin1.csv", CSV1, "are not valid utf-8")
    assert message == (
        "line 3, column 5 (byte offset 16): byte(s) a9 are not valid utf-8 text; declare the file's encoding "
        "(prepare.encoding: latin-1, cp1252, utf-16, or auto to detect it per file) or set "
        "prepare.invalid_chars: replace"
    )


def test_encoding_auto_reads_a_feed_that_mixes_utf8_latin1_and_cp1252(s3, bucket):
    spec = PrepareSpec("csv", header_lines=1, encoding="auto")
    utf8 = run(s3, bucket, CSVKIT / "test_utf8.csv", spec)
    assert (utf8.staged_keys, utf8.detected) == ((), "pass-through csv")
    latin1 = run(s3, bucket, "id,dish\n1,Café crème brûlée\n2,naïve\n".encode("latin-1"), spec, "landing/l.csv")
    assert latin1.detected == "csv (cp1252 (detected) -> utf-8) -> gzip"  # cp1252 is a superset here
    assert staged_bytes(s3, bucket, latin1).decode("utf-8") == "id,dish\n1,Café crème brûlée\n2,naïve\n"
    cp1252 = "id,note\n1,\u201cquoted\u201d costs \u20ac5\n2,it\u2019s\n"  # curly quotes, euro sign
    staged = run(s3, bucket, cp1252.encode("cp1252"), spec, "landing/w.csv")
    assert staged.detected == "csv (cp1252 (detected) -> utf-8) -> gzip"
    assert staged_bytes(s3, bucket, staged).decode("utf-8") == cp1252
    c1 = run(s3, bucket, b"id,x\n1,a\x81b\xe9\n", spec, "landing/c1.csv")  # 0x81: no cp1252 character
    assert c1.detected == "csv (latin-1 (detected) -> utf-8) -> gzip"
    assert staged_bytes(s3, bucket, c1) == "id,x\n1,a\x81bé\n".encode()


def test_invalid_utf8_replaced_with_question_marks_like_acceptinvchars(s3, bucket):
    prepared = run(s3, bucket, CSVKIT / "test_latin1.csv", PrepareSpec("csv", header_lines=1, invalid_chars="replace"))
    assert prepared.detected == "csv (invalid bytes -> '?') -> gzip"
    assert staged_bytes(s3, bucket, prepared) == b"a,b,c\n1,2,3\n4,5,?"


def test_invalid_utf8_far_into_a_gzip_file_restarts_into_staging(s3, bucket):
    rows = b"".join(b"%d,caf\xc3\xa9\n" % i for i in range(200_000))  # ~2.4 MB, valid UTF-8
    data = gzip.compress(b"id,name\n" + rows + b"9,caf\xe9\n" + rows)
    prepared = run(s3, bucket, data, PrepareSpec("csv", header_lines=1, invalid_chars="replace"), "landing/big.csv.gz")
    assert prepared.detected == "gzip csv (invalid bytes -> '?') -> gzip"
    assert staged_bytes(s3, bucket, prepared) == b"id,name\n" + rows + b"9,caf?\n" + rows


# --- repeat safety, cleanup, spec --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "spec", "key"),
    [
        (DATA / "json" / "github_events.json", JSON, "landing/github_events.json"),
        (
            zip_bytes({"a.csv": b"a\n1\n", "b.csv": b"a\n2\n"}),
            PrepareSpec("csv", header_lines=1, zip_members="manifest"),
            "landing/ab.zip",
        ),
    ],
    ids=["json-array", "zip-manifest"],
)
def test_prepare_twice_gives_the_same_keys_and_bytes(s3, bucket, data, spec, key):
    first = run(s3, bucket, data, spec, key)
    bodies = {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in first.staged_keys}
    second = prepare_file(s3, bucket, key, STAGING, spec)
    assert second == first
    assert {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in second.staged_keys} == bodies
    assert sorted(keys_under(s3, bucket, STAGING)) == sorted(first.staged_keys)


def test_cleanup_staging_deletes_staged_keys_only_and_is_idempotent(s3, bucket):
    prepared = run(
        s3,
        bucket,
        zip_bytes({"a.csv": b"a\n1\n", "b.csv": b"a\n2\n"}),
        PrepareSpec("csv", header_lines=1, zip_members="manifest"),
        "landing/ab.zip",
    )
    assert len(keys_under(s3, bucket, STAGING)) == 3
    cleanup_staging(s3, bucket, prepared)
    cleanup_staging(s3, bucket, prepared)
    assert keys_under(s3, bucket, STAGING) == []
    assert keys_under(s3, bucket, "landing/") == ["landing/ab.zip"]
    passed = run(s3, bucket, CSVKIT / "dummy.csv", CSV1)
    cleanup_staging(s3, bucket, passed)  # nothing staged: nothing deleted, original kept
    assert "landing/dummy.csv" in keys_under(s3, bucket, "landing/")


def test_staging_prefix_without_slash_and_missing_object(s3, bucket):
    put(s3, bucket, "in/e.json", (DATA / "json" / "github_events.json").read_bytes())
    prepared = prepare_file(s3, bucket, "in/e.json", "stage", JSON)
    assert prepared.staged_keys == ("stage/in/e.json/e.json.gz",)
    with pytest.raises(s3.exceptions.NoSuchKey):  # infrastructure, not FileRejected: the task retries
        prepare_file(s3, bucket, "in/missing.csv", "stage", CSV1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"file_format": "xml"},
        {"file_format": "csv", "delimiter": "||"},
        {"file_format": "csv", "expected_columns": ("a",)},
        {"file_format": "csv", "json_records_key": "Records"},
        {"file_format": "csv", "encoding": "klingon"},
        {"file_format": "csv", "header_lines": -1},
    ],
)
def test_inconsistent_spec_is_a_configuration_error(kwargs):
    with pytest.raises(ValueError):
        PrepareSpec(**kwargs)
