"""The reaper: no file stays ``IN_PROGRESS`` forever.

A run that dies without its failure callback (a SIGKILLed worker, a lost node) leaves its claim
behind. Every step renews the claim's lease (:func:`register.require_claim`), so a claim whose lease
expired belongs to a dead run. The reaper returns it to ``NEW`` for the next run, or marks it
``FAILED`` once it has used ``settings.max_attempts`` claims. A file whose COPY had committed keeps
its load: the next run skips the COPY (exactly once) and archives it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redshift_ingest import register
from redshift_ingest.config import Settings
from redshift_ingest.sql import render_register

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    """One expired claim and what the reaper did with it: ``released`` (NEW) or ``failed``."""

    file_id: str
    file_type: str
    url: str
    outcome: str
    row: dict[str, Any]


def reap_expired_claims(conn, settings: Settings, now: datetime | None = None) -> list[Reaped]:
    """Release or fail every claim whose lease expired before ``now`` (UTC, default: now), under LOCK.

    :returns: what was done, one :class:`Reaped` per expired claim.
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    reaped = []
    try:
        with conn.cursor() as cur:
            register.lock_register(cur, settings)
            cur.execute(render_register("select_expired_claims.sql", settings), {"now": now})
            columns = [d[0] for d in cur.description]
            expired = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
            for row in expired:
                url = f"s3://{row['bucket']}/{row['s3_key']}"
                give_up = row["attempts"] >= settings.max_attempts and row["loaded_at"] is None
                if give_up:
                    message = (
                        f"the claim of run {row['run_id']} expired at {row['lease_expires_at']} without a "
                        f"heartbeat, after {row['attempts']} attempts (max_attempts {settings.max_attempts})"
                    )
                    params = {"file_id": row["file_id"], "now": now, "error_message": message}
                    cur.execute(render_register("expire_claim.sql", settings), params)
                    outcome = "failed"
                else:
                    cur.execute(render_register("release_claim.sql", settings), {"file_id": row["file_id"], "now": now})
                    outcome = "released"
                log.warning("Expired claim of %s (run %s): %s", url, row["run_id"], outcome)
                reaped.append(Reaped(row["file_id"], row["file_type"], url, outcome, row))
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return reaped
