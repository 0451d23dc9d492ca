"""The register's transitions, against the Redshift stand-in (real PostgreSQL behind it)."""

from __future__ import annotations

import threading
from datetime import datetime

import psycopg2
import pytest

from redshift_ingest import register
from redshift_ingest.register import S3Object
from tests.warehouse_checks import register_history

pytestmark = pytest.mark.usefixtures("landing")


def obj(key: str, etag: str = "e1", minute: int = 0) -> S3Object:
    return S3Object("example-landing-bucket", key, 10, etag, None, datetime(2026, 1, 1, 0, minute))


def claim(warehouse, settings, run_id: str, file_type: str = "seattle_weather", **kwargs):
    """Claim a file of ``file_type`` for run ``run_id`` (selection ``all``, DAG ``d``)."""
    return register.claim_file(
        warehouse, settings, file_type=file_type, selection="all", dag_id="d", run_id=run_id, **kwargs
    )


def status(conn, settings, file_id: str) -> str:
    row = register.get_file(conn, settings, file_id)
    conn.rollback()
    return row["status"]


def test_file_id_is_deterministic_and_version_sensitive():
    a, b = obj("landing/weather/a.csv"), obj("landing/weather/a.csv")
    assert a.file_id == b.file_id and len(a.file_id) == 64
    assert obj("landing/weather/a.csv", etag="e2").file_id != a.file_id
    assert (
        S3Object("example-landing-bucket", "k", version_id="v1").file_id
        != S3Object("example-landing-bucket", "k", version_id="v2").file_id
    )


def test_duplicate_registration_inserts_nothing(warehouse, settings):
    o = obj("landing/weather/a.csv")
    assert register.register_object(warehouse, settings, o, "seattle_weather", "test") is True
    assert register.register_object(warehouse, settings, o, "seattle_weather", "test") is False
    with warehouse.cursor() as cur:
        cur.execute("SELECT count(*), min(status) FROM public.mng WHERE file_id = %s", (o.file_id,))
        assert cur.fetchone() == (1, "NEW")


def test_racing_registrations_insert_once(stack, settings):
    """Ten connections register the same object at once: LOCK + NOT EXISTS lets exactly one insert."""
    from redshift_ingest.hooks.warehouse import WarehouseHook

    o = obj("landing/weather/race.csv")
    results: list[bool] = []
    barrier = threading.Barrier(10)

    def worker():
        conn = WarehouseHook(warehouse_conn_id="redshift_default").get_conn()
        barrier.wait()
        results.append(register.register_object(conn, settings, o, "seattle_weather", "test"))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 9 + [True]


def test_claim_latest_supersedes_older_files(warehouse, settings):
    old, new = obj("landing/stocks/a.csv.gz", minute=1), obj("landing/stocks/b.csv.gz", minute=2)
    for o in (old, new):
        register.register_object(warehouse, settings, o, "stock_prices", "test")
    claimed = register.claim_file(
        warehouse, settings, file_type="stock_prices", selection="latest", dag_id="d", run_id="r1"
    )
    assert claimed.file_id == new.file_id
    row = register.get_file(warehouse, settings, old.file_id)
    assert row["status"] == "FILTERED_OUT"
    with warehouse.cursor() as cur:
        cur.execute("SELECT superseded_by FROM public.mng WHERE file_id = %s", (old.file_id,))
        assert cur.fetchone()[0] == new.file_id
    warehouse.rollback()


def test_claim_all_takes_oldest_first_and_one_run_one_file(warehouse, settings):
    files = [obj(f"landing/weather/{i}.csv", minute=i) for i in (3, 1, 2)]
    for o in files:
        register.register_object(warehouse, settings, o, "seattle_weather", "test")
    first = claim(warehouse, settings, "r1")
    assert first.key == "landing/weather/1.csv"
    # A retry of the same run keeps its claim instead of taking another file.
    again = claim(warehouse, settings, "r1")
    assert again == first
    second = claim(warehouse, settings, "r2")
    assert second.key == "landing/weather/2.csv"
    assert status(warehouse, settings, first.file_id) == "IN_PROGRESS"


def test_nothing_to_claim(warehouse, settings):
    assert claim(warehouse, settings, "r", file_type="tweets") is None


def test_guarded_transitions(warehouse, settings):
    o = obj("landing/weather/g.csv")
    register.register_object(warehouse, settings, o, "seattle_weather", "test")
    claimed = claim(warehouse, settings, "r1")
    # Not loaded yet: mark_done refuses.
    assert register.mark_done(warehouse, settings, claimed.file_id) is None
    # Another run cannot fail it.
    assert register.mark_failed(warehouse, settings, claimed.file_id, "r-other", "boom") is False
    assert register.mark_failed(warehouse, settings, claimed.file_id, "r1", "boom") is True
    assert status(warehouse, settings, claimed.file_id) == "FAILED"
    # A second failure changes nothing.
    assert register.mark_failed(warehouse, settings, claimed.file_id, "r1", "again") is False


def test_record_load_only_once(warehouse, settings):
    o = obj("landing/weather/once.csv")
    register.register_object(warehouse, settings, o, "seattle_weather", "test")
    claim(warehouse, settings, "r1")
    with warehouse.cursor() as cur:
        counts = {"copy_query_id": 1, "rows_loaded": 5, "rows_rejected": 0, "first_error": None}
        assert register.record_load(cur, settings, o.file_id, "r1", **counts) is True
        assert register.record_load(cur, settings, o.file_id, "r1", **counts) is False
    warehouse.commit()
    assert register.mark_done(warehouse, settings, o.file_id) == "DONE"


def test_rerun_by_file_id_and_replay_keep_history(warehouse, settings):
    o = obj("landing/weather/replay.csv")
    register.register_object(warehouse, settings, o, "seattle_weather", "test")
    claim(warehouse, settings, "r1")
    register.mark_failed(warehouse, settings, o.file_id, "r1", "first failure")
    # A rerun by file_id claims a FAILED file directly.
    rerun = claim(warehouse, settings, "r2", file_id=o.file_id)
    assert rerun.file_id == o.file_id
    register.mark_failed(warehouse, settings, o.file_id, "r2", "second failure")
    assert register.replay_file(warehouse, settings, o.file_id) is True
    with warehouse.cursor() as cur:
        cur.execute("SELECT status, attempts, history FROM public.mng WHERE file_id = %s", (o.file_id,))
        state, attempts, history = cur.fetchone()
    warehouse.rollback()
    assert state == "NEW" and attempts == 2
    assert "first failure" in history and "second failure" in history
    with pytest.raises(ValueError, match="is not in the register"):
        claim(warehouse, settings, "r3", file_id="0" * 64)


def load_and_finish(warehouse, settings, o: S3Object, run_id: str, rows: int = 1) -> None:
    """Record a committed load of ``o`` by ``run_id`` (which holds its claim) and mark it DONE."""
    with warehouse.cursor() as cur:
        register.record_load(
            cur, settings, o.file_id, run_id, copy_query_id=1, rows_loaded=rows, rows_rejected=0, first_error=None
        )
    warehouse.commit()
    register.mark_done(warehouse, settings, o.file_id)


def test_rerun_of_a_done_file_needs_force(warehouse, settings):
    o = obj("landing/weather/done.csv")
    register.register_object(warehouse, settings, o, "seattle_weather", "test")
    claim(warehouse, settings, "r1")
    load_and_finish(warehouse, settings, o, "r1", rows=7)
    with pytest.raises(ValueError, match="is DONE: trigger with force=true"):
        claim(warehouse, settings, "r2", file_id=o.file_id)
    with pytest.raises(ValueError, match="is of file type"):
        claim(warehouse, settings, "r2", file_type="tweets", file_id=o.file_id, reload=True)
    assert status(warehouse, settings, o.file_id) == "DONE"

    reloaded = claim(warehouse, settings, "r2", file_id=o.file_id, reload=True)
    assert reloaded.file_id == o.file_id
    row = register.get_file(warehouse, settings, o.file_id)
    warehouse.rollback()
    assert (row["status"], row["run_id"], row["loaded_at"], row["rows_loaded"]) == ("IN_PROGRESS", "r2", None, None)
    assert row["attempts"] == 2
    history = register_history(warehouse, settings, o.file_id)
    assert "attempt 1 DONE: 7 rows loaded, 0 rejected by COPY query 1 (forced reload" in history


def test_a_new_upload_of_a_key_filters_out_its_unloaded_earlier_version(warehouse, settings):
    v1 = obj("landing/weather/versions.csv", etag="v1", minute=1)
    v2 = obj("landing/weather/versions.csv", etag="v2", minute=2)
    register.register_object(warehouse, settings, v1, "seattle_weather", "test")
    register.register_object(warehouse, settings, v2, "seattle_weather", "test")
    assert status(warehouse, settings, v1.file_id) == "FILTERED_OUT"
    assert status(warehouse, settings, v2.file_id) == "NEW"
    assert "a newer upload of the key was registered: " + v2.file_id in register_history(
        warehouse, settings, v1.file_id
    )
    # A late event for an even older version is filtered out at once; the newest stays NEW.
    v0 = obj("landing/weather/versions.csv", etag="v0", minute=0)
    register.register_object(warehouse, settings, v0, "seattle_weather", "test")
    assert status(warehouse, settings, v0.file_id) == "FILTERED_OUT"
    assert status(warehouse, settings, v2.file_id) == "NEW"
    # A loaded version is history, not a candidate: the next upload stays NEW beside it.
    claim(warehouse, settings, "r1")
    load_and_finish(warehouse, settings, v2, "r1")
    v3 = obj("landing/weather/versions.csv", etag="v3", minute=3)
    register.register_object(warehouse, settings, v3, "seattle_weather", "test")
    assert (status(warehouse, settings, v2.file_id), status(warehouse, settings, v3.file_id)) == ("DONE", "NEW")


def test_register_ddl_runs_on_the_stand_in_twice(warehouse, settings):
    register.ensure_register(warehouse, settings)
    register.ensure_register(warehouse, settings)
    with pytest.raises(psycopg2.errors.UndefinedTable), warehouse.cursor() as cur:
        cur.execute("SELECT 1 FROM public.mng_missing")
    warehouse.rollback()
