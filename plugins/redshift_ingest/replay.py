"""Replay: put a FAILED (possibly quarantined) file back to NEW after its cause was fixed.

One step, two ways in: ``python -m redshift_ingest.replay <file_id> ...`` (uses the Airflow
connections of ``settings.yaml``, e.g. ``AIRFLOW_CONN_*`` locally), or triggering the file type's DAG
with a ``file_id`` in a run's conf (``claim_file`` replays a FAILED file before claiming it).

The object moves from ``<quarantine_prefix><key>`` back to ``<key>`` first, then the register row goes
``FAILED`` -> ``NEW`` keeping the earlier attempt in ``history``. Both steps are safe to repeat, so a
crash between them is cured by running the replay again.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, cast

from redshift_ingest import register
from redshift_ingest.config import Settings
from redshift_ingest.s3_objects import ObjectConflict, move_object, s3_hook

log = logging.getLogger(__name__)


def replay(conn, settings: Settings, file_id: str) -> dict[str, Any]:
    """Return one FAILED file to landing and to ``NEW``.

    :returns: the register row after the replay.
    :raises ValueError: the file is unknown or not FAILED (the message says its state).
    :raises redshift_ingest.s3_objects.ObjectMissing: the object is neither in quarantine nor landing.
    :raises redshift_ingest.s3_objects.ObjectConflict: landing holds another object under the key.
    """
    row = register.get_file(conn, settings, file_id)
    conn.rollback()
    if row is None:
        raise ValueError(f"file_id {file_id} is not in the register")
    if row["status"] != register.FAILED:
        raise ValueError(f"file_id {file_id} is {row['status']}; only FAILED files are replayed")
    if row["quarantine_key"]:
        move_object(
            s3_hook(settings.aws_conn_id),
            row["bucket"],
            row["quarantine_key"],
            row["s3_key"],
            overwrite=False,
        )
    if not register.replay_file(conn, settings, file_id):
        raise ValueError(f"file_id {file_id} changed state during the replay; look at it again")
    log.info("Replayed s3://%s/%s (file_id %s): NEW again", row["bucket"], row["s3_key"], file_id)
    after = register.get_file(conn, settings, file_id)
    conn.rollback()
    return cast(dict[str, Any], after)  # the row exists: replay_file just updated it


def restore_for_reload(settings: Settings, row: dict[str, Any]) -> None:
    """Put a ``DONE`` file's object back from the archive under its landing key, for a forced reload.

    Safe to repeat (a move already done is found done).

    :raises redshift_ingest.s3_objects.ObjectMissing: the object is neither archived nor in landing.
    :raises redshift_ingest.s3_objects.ObjectConflict: landing holds another object under the key (a
        newer upload): it is not overwritten.
    """
    if row["archive_key"]:
        hook = s3_hook(settings.aws_conn_id)
        move_object(hook, row["bucket"], row["archive_key"], row["s3_key"], overwrite=False)


def hold_claim(conn, settings: Settings, file_id: str, run_id: str) -> dict[str, Any]:
    """The first call of every step: this run must hold the file; renews its lease.

    When a person clears a failed task in the UI, the file is ``FAILED`` by this very run (the
    failure callback ran): the step takes it back, out of quarantine if it went there, and goes on.

    A step of a run that already finished (cleared after success) gets the row as it is, and finds
    its work done (the COPY sees ``loaded_at``, the archive finds the object moved).

    :returns: the register row.
    :raises AirflowFailException: the run does not hold the file (another run, the reaper, a replay
        took it): not retried.
    """
    from airflow.sdk.exceptions import AirflowFailException

    row = register.get_file(conn, settings, file_id)
    conn.rollback()
    if row and row["status"] == register.FAILED and row["run_id"] == run_id:
        if row["quarantine_key"]:
            hook = s3_hook(settings.aws_conn_id)
            try:
                move_object(hook, row["bucket"], row["quarantine_key"], row["s3_key"], overwrite=False)
            except ObjectConflict as err:
                raise AirflowFailException(str(err)) from err
        if register.resume_failed_claim(conn, settings, file_id, run_id):
            log.info("Resumed s3://%s/%s for run %s after its failed attempt", row["bucket"], row["s3_key"], run_id)
    if row and row["status"] in (register.DONE, register.DONE_WITH_REJECTS) and row["run_id"] == run_id:
        return row  # a step of a run that already finished: each step finds its work done
    try:
        return register.require_claim(conn, settings, file_id, run_id)
    except register.ClaimLost as err:
        raise AirflowFailException(str(err)) from err


def main(argv: list[str] | None = None) -> int:
    from redshift_ingest.config import default_settings
    from redshift_ingest.hooks.warehouse import WarehouseHook

    parser = argparse.ArgumentParser(prog="python -m redshift_ingest.replay", description=__doc__.split("\n")[0])
    parser.add_argument("file_ids", nargs="+", help="file_id(s) from the register (mng)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = default_settings()
    conn = WarehouseHook(warehouse_conn_id=settings.warehouse_conn_id).get_conn()
    failures = 0
    try:
        for file_id in args.file_ids:
            try:
                row = replay(conn, settings, file_id)
            except (ValueError, FileNotFoundError, ObjectConflict) as err:
                print(f"not replayed: {err}", file=sys.stderr)
                failures += 1
                continue
            print(f"replayed   {row['file_type']:20} s3://{row['bucket']}/{row['s3_key']} {file_id}")
    finally:
        conn.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
