"""Streaming memory check (slow): ~100 MB CSV through an out-of-process stand-in; prints peak RSS."""

from __future__ import annotations

import pytest

from redshift_local.bench import run, summary


@pytest.mark.slow
def test_copy_of_100_mb_streams(capsys):
    result = run(100, runs=1)
    with capsys.disabled():
        print(f"\nredshift_local 100 MB COPY: {result}\n{summary(result)}")
    assert result["differing_rows"] == 0
    assert result["object_mib"] >= 100
    # Streaming: the proxy's peak RSS stays far below the object size (interpreter + boto3 ~ 60-90 MiB).
    assert result["peak_rss_mib"] < result["object_mib"]
