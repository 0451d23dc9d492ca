"""Streaming, measured: a ~50 MB JSON array and a ~50 MB zip prepared in a child process under tracemalloc.

The child measures only its own Python allocations (moto's server runs inside the pytest process and
keeps uploaded objects in memory, which would swamp the figure). Peak traced memory is a property
of the code, not a timing, so it is asserted; wall time is not.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[4]
SIZE = 50 * 1024 * 1024
PEAK_LIMIT = 32 * 1024 * 1024

CHILD = """
import json, sys, tracemalloc
import boto3
from redshift_ingest.prepare import PrepareSpec, prepare_file
bucket, key, spec = sys.argv[1], sys.argv[2], PrepareSpec(**json.loads(sys.argv[3]))
s3 = boto3.client("s3")
tracemalloc.start()
prepared = prepare_file(s3, bucket, key, "staging/", spec)
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"peak": peak, "detected": prepared.detected, "staged": prepared.staged_keys}))
"""


def _record(i: int) -> dict:
    return {"id": i, "name": f"event-{i}", "tags": ["a", "b", "ü"], "value": i / 7, "payload": "x" * 400}


def _write_json_array(path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[\n")
        while out.tell() < SIZE:
            out.write(("," if count else "") + json.dumps(_record(count)) + "\n")
            count += 1
        out.write("]\n")
    return count


def _write_zip(path: Path) -> int:
    rows = 0
    # Stored (not deflated) so the archive itself is ~50 MB and spools to disk, not memory.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive, archive.open("big.csv", "w") as member:
        member.write(b"id,name,payload\n")
        written = 0
        while written < SIZE:
            line = f"{rows},name-{rows},{uuid.UUID(int=rows * 7919).hex * 8}\n".encode()
            member.write(line)
            written += len(line)
            rows += 1
    return rows


def _prepare_in_child(s3_server, bucket: str, key: str, spec: dict) -> dict:
    env = {**os.environ, **s3_server.env(), "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, bucket, key, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=540,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["json-array", "zip"])
def test_prepare_streams_50mb_in_bounded_memory(s3_server, tmp_path, kind):
    s3 = boto3.client("s3")
    bucket = f"prepare-mem-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    if kind == "json-array":
        path, spec = tmp_path / "big.json", {"file_format": "json"}
        expected_lines = _write_json_array(path)
    else:
        path, spec = tmp_path / "big.zip", {"file_format": "csv", "header_lines": 1}
        expected_lines = _write_zip(path) + 1
    s3.upload_file(str(path), bucket, f"landing/{path.name}")

    result = _prepare_in_child(s3_server, bucket, f"landing/{path.name}", spec)

    size, peak = path.stat().st_size / 2**20, result["peak"] / 2**20
    print(f"\n{kind}: {size:.1f} MiB object, peak traced Python memory {peak:.2f} MiB")
    assert result["peak"] < PEAK_LIMIT
    (staged,) = result["staged"]
    lines = 0
    with gzip.GzipFile(fileobj=s3.get_object(Bucket=bucket, Key=staged)["Body"]) as body:
        for _line in body:
            lines += 1
    assert lines == expected_lines
