"""IngestFilesOperator: the ``load_files`` task of every ingest DAG, from claim to DONE in one task.

Claim (:func:`redshift_ingest.tasks.claim_files`) -> prepare (:func:`~redshift_ingest.tasks.prepare_files`)
-> COPY in one transaction (:class:`~redshift_ingest.operators.copy_into_target.CopyIntoTargetOperator`'s
register mode) -> archive and DONE (:func:`~redshift_ingest.tasks.finish_files`).

Why one task and not four: the four steps always run together, one after the other, for the same
files, and each task boundary cost about a second of scheduling plus half a second of task start
(``make bench-latency``, docs/performance.md). What the boundaries gave is kept elsewhere: every step
commits its outcome to the register before the next begins (claimed, staged, loaded, archived, DONE),
so a retry, a cleared task or a run after a dead worker resumes at the first step not done (the
fault-injection suite kills the worker at each of these points and inside the COPY); the step that
failed (``step``) is named in the failure alert and in the files' ``error_message``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redshift_ingest.config import FileType, Settings, default_settings
from redshift_ingest.operators.copy_into_target import CopyIntoTargetOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["IngestFilesOperator"]


class IngestFilesOperator(CopyIntoTargetOperator):
    """Claim what the run loads, prepare it, COPY it with per-file accounting, archive it and mark it DONE.

    Takes :class:`CopyIntoTargetOperator`'s arguments in register mode (``file_type``, ``settings``,
    the plain COPY arguments rendered in the UI); ``claimed_files`` and ``prepared`` are this task's
    own, never given.

    :returns: (XCom) ``{"claimed": n, "done": n, "done_with_rejects": n, "failed": n,
        "filtered_out": n, "copies": n, "transactions": n, "mode": "manifest" | "per_file" | None,
        "rows_loaded": n, "rows_rejected": n}`` (files, COPY statements and rows of this run).
    :raises airflow.sdk.exceptions.AirflowSkipException: nothing to claim (another run took it).
    :raises airflow.sdk.exceptions.AirflowFailException: the ``file_id`` of the run's conf names a file that
        cannot be rerun.
    :raises redshift_ingest.errors.RunHadFailures: some or all files of the run failed (each was marked
        FAILED or FILTERED_OUT and kept; one alert).
    :raises redshift_ingest.errors.RetryableLoadError: a passing warehouse problem (retried by Airflow;
        the retry resumes the same files).
    :raises redshift_ingest.errors.LoadConfigError: permissions or configuration (not retried).
    """

    ui_color = "#c9e4f6"
    step: str | None = None  # the step running or last run: claim, prepare, COPY or archive

    def __init__(self, *, file_type: FileType, settings: Settings | None = None, **kwargs: Any) -> None:
        if "claimed_files" in kwargs or "claimed_file" in kwargs or "prepared" in kwargs:
            raise ValueError("IngestFilesOperator claims and prepares its own files: no claimed_files or prepared")
        super().__init__(file_type=file_type, settings=settings, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from redshift_ingest import tasks

        assert self.file_type is not None  # __init__ requires it
        file_type = self.file_type
        settings = self.settings or default_settings()
        self.step = "claim"
        claimed = tasks.claim_files(file_type, settings, context)
        self.claimed_files = claimed
        self.step = "prepare"
        self.prepared = tasks.prepare_files(file_type, settings, claimed, context)
        self.step = "COPY"
        loaded = super().execute(context)
        self.step = "archive"
        summary = tasks.finish_files(file_type, settings, claimed, context)
        return {
            "claimed": len(claimed),
            **summary,
            "copies": loaded["copies"],
            "transactions": loaded["transactions"],
            "mode": loaded["mode"],
            "rows_loaded": sum(f["rows_loaded"] or 0 for f in loaded["files"]),
            "rows_rejected": sum(f["rows_rejected"] or 0 for f in loaded["files"]),
        }
