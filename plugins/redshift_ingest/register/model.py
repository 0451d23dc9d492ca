"""The register's vocabulary: a file's status, the transitions allowed between statuses, and the
typed records that move between the register and the steps of a run.

Every status change in ``include/sql/register`` is one guarded ``UPDATE ... WHERE status = <from>``;
:data:`TRANSITIONS` lists them all in one place
(``tests/plugins/redshift_ingest/register/test_register_model.py`` checks the SQL templates against it).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class FileStatus(StrEnum):
    """Where one registered object version stands (column ``mng.status``)."""

    NEW = "NEW"  # registered, waiting for a run of its file type
    IN_PROGRESS = "IN_PROGRESS"  # claimed by one DAG run (dag_id, run_id) under a lease
    DONE = "DONE"  # loaded, archived
    DONE_WITH_REJECTS = "DONE_WITH_REJECTS"  # loaded with rows rejected under MAXERROR, archived
    FAILED = "FAILED"  # not loaded; error_message says why; the object kept (landing or quarantine)
    FILTERED_OUT = "FILTERED_OUT"  # never to be loaded: superseded (selection latest, a newer upload)
    UNMATCHED = "UNMATCHED"  # no file type matches the key: recorded, never dropped
    REPLACED = "REPLACED"  # its rows were deleted by a newer version of the key (on_new_version: replace)


NEW = FileStatus.NEW
IN_PROGRESS = FileStatus.IN_PROGRESS
DONE = FileStatus.DONE
DONE_WITH_REJECTS = FileStatus.DONE_WITH_REJECTS
FAILED = FileStatus.FAILED
FILTERED_OUT = FileStatus.FILTERED_OUT
UNMATCHED = FileStatus.UNMATCHED
REPLACED = FileStatus.REPLACED

#: Statuses no run changes any more (a replay or forced reload starts a new attempt from them).
TERMINAL = frozenset({DONE, DONE_WITH_REJECTS, FAILED, FILTERED_OUT, UNMATCHED, REPLACED})
#: Statuses whose rows are in the target table.
LOADED = frozenset({DONE, DONE_WITH_REJECTS})

#: Every transition the register makes, ``from -> {to: what makes it}``.
TRANSITIONS: dict[FileStatus, dict[FileStatus, str]] = {
    NEW: {
        IN_PROGRESS: "a run claims it (alone, or in a batch)",
        FILTERED_OUT: "a newer file wins (selection latest) or a newer upload of its key is registered",
    },
    IN_PROGRESS: {
        DONE: "loaded and archived",
        DONE_WITH_REJECTS: "loaded with rows rejected, and archived",
        FAILED: "the file's data, a config error or the last retry failed; or the reaper gave up",
        FILTERED_OUT: "the object changed after registration: this version can no longer be read",
        NEW: "its run died: the reaper released the expired claim",
        REPLACED: "a newer version of its key was loaded over it",
    },
    DONE: {
        IN_PROGRESS: "forced reload (force param)",
        REPLACED: "a newer version of its key was loaded",
    },
    DONE_WITH_REJECTS: {
        IN_PROGRESS: "forced reload (force param)",
        REPLACED: "a newer version of its key was loaded",
    },
    FAILED: {
        NEW: "replayed (file_id param, replay command, register view)",
        IN_PROGRESS: "a cleared task of the run that failed it takes it back",
        REPLACED: "its COPY had committed (it failed later) and a newer version of its key was loaded",
    },
    FILTERED_OUT: {},
    UNMATCHED: {},
    REPLACED: {},
}


def allowed(old: FileStatus | str, new: FileStatus | str) -> bool:
    """True when the register may move a file from ``old`` to ``new`` (see :data:`TRANSITIONS`)."""
    return FileStatus(new) in TRANSITIONS[FileStatus(old)]


class ClaimLost(RuntimeError):
    """The file is no longer claimed by this run (another run or the reaper took it)."""


@dataclass(frozen=True)
class S3Object:
    """One S3 object version as an event or a listing describes it.

    :param size_bytes: object size in bytes.
    :param etag: the ETag without quotes.
    :param last_modified: UTC, naive.
    """

    bucket: str
    key: str
    size_bytes: int | None = None
    etag: str | None = None
    version_id: str | None = None
    last_modified: datetime | None = None

    @property
    def file_id(self) -> str:
        """Deterministic id: sha256 of bucket, key and version id (or ETag), 64 hex characters.

        The same object version always gets the same id, so a duplicate event registers nothing; a
        new upload under the same key (new ETag / version) is a new file.
        """
        version = self.version_id or (self.etag or "").strip('"')
        return hashlib.sha256(f"{self.bucket}\n{self.key}\n{version}".encode()).hexdigest()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ClaimedFile:
    """One file a run holds, as the steps pass it on (XCom: no secrets, JSON-serialisable).

    :param size_bytes: object size in bytes (None when the event did not say).
    :param etag: the registered ETag without quotes: the load checks it still names the object.
    """

    file_id: str
    file_type: str
    bucket: str
    key: str
    size_bytes: int | None
    etag: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> ClaimedFile:
        return cls(**value)


def claimed_from_row(row: dict[str, Any]) -> ClaimedFile:
    """The :class:`ClaimedFile` of a register row (as :func:`~redshift_ingest.register.get_file` returns it)."""
    return ClaimedFile(
        file_id=row["file_id"],
        file_type=row["file_type"],
        bucket=row["bucket"],
        key=row["s3_key"],
        size_bytes=row["size_bytes"],
        etag=row["etag"],
    )
