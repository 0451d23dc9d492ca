"""Load a batch of claimed files into their table: few COPYs, one commit, exact per-file accounting.

Two ways to COPY a batch, both in **one transaction** with the register update of every file:

- **manifest** (a file type without ``target.file_id_column``): one ``COPY ... MANIFEST`` per
  compression (normally one for the whole batch), every entry a full key with ``"mandatory": true``
  (AWS "Using a manifest to specify data files"), so all slices read the files in parallel. Rows
  loaded per file come from ``STL_LOAD_COMMITS.lines_scanned`` (``SYS_LOAD_DETAIL`` on Serverless)
  less that file's rows in ``STL_LOAD_ERRORS``; they must add up to ``pg_last_copy_count()``, or
  the batch is loaded the other way (never a guess).
- **per file** (with ``target.file_id_column``, where every row must carry its own file's id): one
  COPY per file into a temporary staging table, each tagged with its ``file_id`` right after its
  COPY, then one ``INSERT ... SELECT`` into the target after the file-scoped deletes. Rows loaded
  per file are that COPY's ``pg_last_copy_count()``. ``load_mode: merge`` and any
  ``on_schema_change`` but ``fail`` load this way too, with or without the column: merge upserts
  the staged rows by key (:meth:`BatchLoader._merge`); a drift policy gives each file's COPY a column
  list from its own header (:meth:`BatchLoader._match_headers`).

A bad file does not sink its batch: the files at fault are found (a COPY of one file failed; a file
over MAXERROR; an object named in Redshift's error; an object that changed since registration), the
transaction is rolled back, those files are set aside with what went wrong, and the rest of the batch
is loaded again in a new transaction. When a manifest COPY fails and no file can be blamed, the batch
is loaded per file, which always finds the culprit.

Exactly the registered object: manifest entries name full keys (``COPY ... FROM 's3://b/x.csv'``
alone is a key *prefix* and would also load ``x.csv.bak``), and every object is checked against its
registered ETag before the COPY (by the prepare step) and again after it, inside the transaction,
before the commit: an object overwritten in between is never loaded under the earlier file's id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

import psycopg2

from redshift_ingest import register
from redshift_ingest.config import IDENTIFIER, FileType, Merge, Settings, TableName, quote_identifier
from redshift_ingest.copy_sql import build_copy, quote_column
from redshift_ingest.errors import LoadConfigError, Policy, RetryableLoadError, database_error_policy
from redshift_ingest.prepare.columns import compare, fold
from redshift_ingest.prepare.json_records import key_meaning
from redshift_ingest.prepare.staging import staging_root
from redshift_ingest.s3_objects import refusal
from redshift_ingest.sql import render

log = logging.getLogger(__name__)

MANIFEST = "manifest"
PER_FILE = "per_file"
MANIFEST_FOLDER = "_copy/"  # in a file's staging folder; staged copies end in .gz, never collide
ERROR_REPORT_ROWS = 1000  # rows of each file's rejected-rows report; STL_LOAD_ERRORS keeps them anyway
S3_CONCURRENCY = 8  # parallel HEAD / copy requests to S3
FILENAME_CHARS = 256  # STL_LOAD_COMMITS.filename and STL_LOAD_ERRORS.filename are CHAR(256)
MAX_COPY_ERRORS = 100000  # the largest MAXERROR Redshift accepts (AWS "COPY parameter reference")
# load_mode merge: a staging-table column holding each row's file's place in the batch.
FILE_SEQ_COLUMN = "_ingest_file_seq"
# on_schema_change ignore_extra: staging-table columns taking a file's fields the table has not.
EXTRA_COLUMN = "_ingest_extra_"
EXTRA_TYPE = "VARCHAR(65535)"
_S3_URL = re.compile(r"s3://[^\s'\"]+")


@dataclass(frozen=True)
class LoadError:
    """One rejected row as Redshift records it (STL_LOAD_ERRORS / SYS_LOAD_ERROR_DETAIL)."""

    file_name: str | None
    line_number: int | None
    column_name: str | None
    column_type: str | None
    error_code: int | None
    error_message: str | None
    raw_value: str | None

    def describe(self) -> str:
        """``line 4, column venueseats (int4): Invalid digit, Value 'x' [1207]``."""
        parts = [f"line {self.line_number}"]
        if self.column_name:
            parts.append(f"column {self.column_name}" + (f" ({self.column_type})" if self.column_type else ""))
        text = ", ".join(parts) + f": {self.error_message}"
        if self.raw_value:
            text += f" (value {self.raw_value!r})"
        if self.error_code is not None:
            text += f" [{self.error_code}]"
        return text


@dataclass(frozen=True)
class BatchFile:
    """One claimed file as the load sees it.

    :param entries: the S3 URLs COPY reads for it: the landed object itself, or what the prepare
        step staged (a zip's members, a converted JSON array).
    :param compression: ``gzip`` / ``bzip2`` / ``zstd`` / None, for every entry.
    :param last_modified: S3 last-modified of the registered version (orders versions of a key).
    :param registered_at: when it was registered (orders versions uploaded in the same second).
    :param header: the file's column names, if read: its CSV header (whitespace, quotes and BOM
        stripped) or its first JSON record's keys.
    """

    file_id: str
    bucket: str
    key: str
    etag: str | None
    size_bytes: int | None
    entries: tuple[str, ...]
    compression: str | None
    last_modified: datetime | None = None
    registered_at: datetime | None = None
    header: tuple[str, ...] | None = None  # column names (prepare step), for on_schema_change

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def version_order(self) -> tuple[datetime, datetime]:
        return (self.last_modified or datetime.min, self.registered_at or datetime.min)


@dataclass
class FileLoad:
    """What the load did for one file: rows loaded and rejected, the COPY's query id, its errors."""

    file_id: str
    rows_loaded: int
    rows_rejected: int
    copy_query_id: int | None
    errors: list[LoadError] = field(default_factory=list)
    error_report_key: str | None = None

    @property
    def first_error(self) -> str | None:
        return self.errors[0].describe() if self.errors else None


@dataclass
class FileFailure:
    """A file set aside from its batch, and why.

    :param kind: ``data`` (its data: quarantined), ``empty`` (every row rejected, nothing loaded:
        quarantined like ``data``), ``changed`` (the object is no longer the
        registered version: FILTERED_OUT), ``newer_version`` (a newer version of its key is loaded:
        FAILED, kept in landing).
    """

    file: BatchFile
    kind: str
    message: str
    load: FileLoad | None = None


@dataclass
class BatchOutcome:
    """The result of :meth:`BatchLoader.load`."""

    loads: list[FileLoad] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    copies: int = 0  # COPY statements run
    transactions: int = 0  # transactions that ran at least one COPY (committed or rolled back)
    mode: str = MANIFEST
    rows_replaced: int = 0  # rows of earlier versions of the batch's keys deleted
    rows_updated: int = 0  # load_mode merge: target rows replaced by a row of the same merge key
    # on_schema_change add_columns: file_id -> the columns its header brought, added to the target
    columns_added: dict[str, list[str]] = field(default_factory=dict)


class FilesAtFault(Exception):
    """Raised by a loader built with ``set_aside=False`` when files are at fault: the transaction was
    rolled back and nothing committed. ``failures`` are those files (the first one's message first)."""

    def __init__(self, failures: list[FileFailure]) -> None:
        super().__init__(failures[0].message)
        self.failures = failures


def record_nothing(cur, loads: list[FileLoad]) -> None:
    """The ``record`` step of a load without a register (a plain COPY of S3 objects)."""


def register_recorder(settings: Settings, run_id: str) -> Callable[[Any, list[FileLoad]], None]:
    """The default ``record`` step: every load into the register with one guarded UPDATE, in the
    load's transaction (:func:`redshift_ingest.register.record_loads`).

    :raises register.ClaimLost: the run no longer holds some files (the caller rolls back).
    """

    def record(cur, loads: list[FileLoad]) -> None:
        recorded = register.record_loads(cur, settings, run_id, [_load_record(load) for load in loads])
        if recorded != len(loads):
            raise register.ClaimLost(
                f"the register recorded {recorded} of {len(loads)} loads: some files are no longer "
                f"claimed by run {run_id} (or were loaded already); the COPY was rolled back"
            )

    return record


class _CopyFailed(Exception):
    """A COPY failed on data; ``culprits`` are the files found at fault (may be empty)."""

    def __init__(self, message: str, culprits: list[FileFailure]) -> None:
        super().__init__(message)
        self.culprits = culprits


class _CountsDisagree(Exception):
    """Per-file counts from the load commits did not add up to ``pg_last_copy_count()``."""


class BatchLoader:
    """Loads one batch of files of one file type; see the module docstring.

    :param conn: a psycopg2 connection to the warehouse (not in a transaction).
    :param s3: a boto3 S3 client (manifests, ETag checks, error reports).
    :param iam_role_arn: the role COPY assumes (``IAM_ROLE``).
    :param run_id: the DAG run holding the files' claims.
    :param manifest_tag: names this run's manifests (a digest of the run id). Each manifest is written
        in the staging folder of the first file it lists, so it is deleted with that file's staged
        copies whichever run finishes or fails the file (a killed worker leaves none behind for
        good); the loader also deletes the manifests it wrote once its batch is over.
    :param error_report_key: ``(file, failed) -> key`` of a file's rejected-rows report (in the
        file's bucket), or None to write none.
    :param record: ``(cursor, loads)``, run in the load's transaction just before its commit: what
        bookkeeping goes with the rows (:class:`FileLoad` of every file loaded). Default: the
        register (:func:`register_recorder`); :func:`record_nothing` for a load without one.
    :param transaction_guard: a context manager factory entered around each load transaction (the
        operator's lease keeper: it renews the leases just before and writes nothing during it).
    :param set_aside: True (default): files at fault are set aside and the rest loaded (see
        :meth:`load`). False: the first files found at fault end the load with :class:`FilesAtFault`,
        nothing committed; a file whose every row was rejected within MAXERROR is then a load like
        any other (0 rows loaded), as a plain ``COPY`` has it.
    """

    def __init__(
        self,
        conn,
        s3,
        *,
        file_type: FileType,
        settings: Settings,
        iam_role_arn: str,
        run_id: str,
        manifest_tag: str,
        error_report_key: Callable[[BatchFile, bool], str | None],
        record: Callable[[Any, list[FileLoad]], None] | None = None,
        set_aside: bool = True,
        transaction_guard: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.conn = conn
        self.s3 = s3
        self.file_type = file_type
        self.settings = settings
        self.iam_role_arn = iam_role_arn
        self.run_id = run_id
        self.manifest_tag = manifest_tag
        self._manifests: list[tuple[str, str]] = []  # (bucket, key) written by this loader
        self.error_report_key = error_report_key
        self.record = record if record is not None else register_recorder(settings, run_id)
        self.set_aside = set_aside
        self.transaction_guard = transaction_guard or contextlib.nullcontext
        self.source = settings.load_errors_source
        self.outcome = BatchOutcome()
        self.staging_table = f"stage_{file_type.name}"
        self.winners_table = f"merge_{file_type.name}"
        # Staged: every file COPYs into a temporary table first (rows tagged with their file_id, or
        # merged by key), one COPY per file.
        self.drift = file_type.on_schema_change != ("fail",)
        self.staged = bool(file_type.target.file_id_column) or file_type.load_mode == "merge" or self.drift
        # on_schema_change: a JSON file's columns are its first record's keys, matched by COPY's rule.
        self.json = file_type.format == "json"
        self.name_key = key_meaning(file_type.copy_options.json_paths == "auto ignorecase") if self.json else fold
        self._extra_slots = 0
        self._rejected_counts: dict[str, int] = {}
        self._last_ok_query = 0  # the newest COPY of this session that succeeded

    # -- the batch ------------------------------------------------------------------------------

    def load(self, files: list[BatchFile]) -> BatchOutcome:
        """Load ``files``: commit once for all that load; set aside the files at fault.

        :returns: the per-file loads (committed), the files set aside (not loaded; the caller marks
            them), and the COPY and transaction counts.
        :raises RetryableLoadError: a passing warehouse problem (the transaction was rolled back).
        :raises LoadConfigError: a permission or configuration problem (rolled back; nothing loaded).
        :raises register.ClaimLost: the run no longer holds some files (rolled back).
        :raises FilesAtFault: ``set_aside=False`` and files are at fault (rolled back; nothing loaded).
        """
        remaining = list(files)
        mode = PER_FILE if self.staged or _ambiguous_names(remaining) else MANIFEST
        self.outcome.mode = mode
        while remaining:
            try:
                culprits = self._attempt(remaining, mode)
            except _CopyFailed as failed:
                self.conn.rollback()
                culprits = failed.culprits
                if not culprits:
                    if mode == MANIFEST and len(remaining) > 1:
                        log.warning("Batch COPY failed and no file could be blamed (%s): loading per file", failed)
                        mode = self.outcome.mode = PER_FILE
                        continue
                    culprits = [FileFailure(f, "data", str(failed)) for f in remaining]
            except _CountsDisagree as why:
                self.conn.rollback()
                log.warning("%s: loading this batch again with one COPY per file", why)
                mode = self.outcome.mode = PER_FILE
                continue
            if not culprits:
                return self.outcome
            if all(c.kind == "empty" for c in culprits):
                # Committed: these loaded nothing (every row rejected) and are set aside after it.
                self.outcome.failures.extend(culprits)
                return self.outcome
            if not self.set_aside:
                raise FilesAtFault(culprits)
            blamed = {c.file.file_id for c in culprits}
            for culprit in culprits:
                log.warning("Set aside %s (%s): %s", culprit.file.url, culprit.kind, culprit.message)
                self._write_failure_report(culprit)
            self.outcome.failures.extend(culprits)
            remaining = [f for f in remaining if f.file_id not in blamed]
        return self.outcome

    def _write_failure_report(self, culprit: FileFailure) -> None:
        """Write the rejected-rows report of a file set aside for its data (next to its quarantined
        copy), so a person finds the rows that failed it from the register."""
        load = culprit.load
        if culprit.kind != "data" or load is None or not load.errors or load.error_report_key:
            return
        key = self.error_report_key(culprit.file, True)
        if key is None:
            return
        try:
            write_error_report(self.s3, culprit.file.bucket, key, load.errors)
        except Exception as err:  # the file is set aside all the same; its first error is in the message
            log.exception("Could not write the rejected-rows report s3://%s/%s", culprit.file.bucket, key)
            culprit.message += f" | the rejected-rows report could not be written to s3://{culprit.file.bucket}/{key}"
            culprit.message += f" ({refusal(err) or type(err).__name__}); STL_LOAD_ERRORS has the rows"
            return
        load.error_report_key = key

    def _attempt(self, files: list[BatchFile], mode: str) -> list[FileFailure]:
        """One transaction over ``files``. Returns the culprits (rolled back) or [] (committed)."""
        target = self.file_type.target
        tagged = bool(target.file_id_column)
        self.outcome.transactions += 1
        with self.transaction_guard():
            return self._transaction(files, mode, target, tagged)

    def _transaction(self, files: list[BatchFile], mode: str, target, tagged: bool) -> list[FileFailure]:
        try:
            with self.conn.cursor() as cur:
                columns = table_columns(cur, self.file_type) if self.staged else None
                if self.drift:
                    mismatched, columns = self._match_headers(
                        cur, files, cast(list[str], columns)
                    )  # set: staged loads read them
                    if mismatched:
                        self.conn.rollback()
                        return mismatched
                if self.staged:
                    cur.execute(
                        render(
                            "load/create_staging.sql",
                            staging=quote_identifier(self.staging_table),
                            target=target.table.quoted,
                        )
                    )
                    for slot in range(self._extra_slots):
                        cur.execute(
                            render(
                                "load/add_column.sql",
                                table=quote_identifier(self.staging_table),
                                column=quote_column(f"{EXTRA_COLUMN}{slot}"),
                                type=EXTRA_TYPE,
                            )
                        )
                    if self.file_type.merge:
                        cur.execute(
                            render(
                                "load/add_column.sql",
                                table=quote_identifier(self.staging_table),
                                column=quote_column(FILE_SEQ_COLUMN),
                                type="INTEGER",
                            )
                        )
                elif self.file_type.load_mode == "replace":
                    # Not TRUNCATE: it commits implicitly on Redshift (AWS "TRUNCATE").
                    cur.execute(render("load/delete_all.sql", target=target.table.quoted))
                loads = self._copy_manifests(cur, files) if mode == MANIFEST else self._copy_each(cur, files, columns)
                culprits = self._over_max_error(files, loads) + self._changed_objects(files)
                if culprits:
                    self.conn.rollback()
                    return culprits
                newer = self._newer_versions_loaded(cur, files) if tagged else []
                if newer:
                    self.conn.rollback()
                    return newer
                conflicts = self._merge_key_problems(cur, files) if self.file_type.merge else []
                if conflicts:
                    self.conn.rollback()
                    return conflicts
                # A file whose every row was rejected loaded nothing: it fails like a bad file, but
                # adds nothing to roll back; it is set aside after the others commit.
                empty = [
                    f
                    for f in files
                    if self.set_aside and loads[f.file_id].rows_loaded == 0 and loads[f.file_id].rows_rejected > 0
                ]
                empty_ids = {f.file_id for f in empty}
                good = [f for f in files if f.file_id not in empty_ids]
                if self.staged and good:
                    self.outcome.rows_replaced = self._publish(
                        cur, good, cast(list[str], columns)
                    )  # set: staged loads read them
                for f in files:
                    load = loads[f.file_id]
                    if load.rows_rejected:
                        load.error_report_key = self.error_report_key(f, f.file_id in empty_ids)
                self.record(cur, [loads[f.file_id] for f in good])
            # Written before the commit: a report without a load is harmless, a load whose report
            # is missing would hide rejected rows.
            for f in files:
                load = loads[f.file_id]
                if load.error_report_key:
                    write_error_report(self.s3, f.bucket, load.error_report_key, load.errors)
            self.conn.commit()
        except (_CopyFailed, _CountsDisagree):
            raise
        except psycopg2.Error as err:
            self.conn.rollback()
            raise _database_error(err, f"loading {len(files)} file(s) into {target.table}") from err
        except Exception:
            self.conn.rollback()
            raise
        self.outcome.loads = [loads[f.file_id] for f in files if f.file_id not in empty_ids]
        return [
            FileFailure(
                f,
                "empty",
                f"every row was rejected ({loads[f.file_id].rows_rejected} rows); nothing loaded",
                loads[f.file_id],
            )
            for f in empty
        ]

    # -- COPY ---------------------------------------------------------------------------------

    def _manifest(self, name: str, files: Iterable[BatchFile]) -> str:
        """Write a manifest of every entry of ``files`` (each mandatory); returns its s3:// URL."""
        files = list(files)
        body = {"entries": [{"url": url, "mandatory": True} for f in files for url in f.entries]}
        bucket = files[0].bucket
        folder = staging_root(self.settings.staging_prefix, files[0].key) + MANIFEST_FOLDER
        key = f"{folder}{self.manifest_tag}-{name}.manifest"
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")
        self._manifests.append((bucket, key))
        return f"s3://{bucket}/{key}"

    def clear_manifests(self) -> None:
        """Delete the manifests this loader wrote (best effort: a manifest left behind is deleted
        with its file's staged copies when the file is archived or failed)."""
        by_bucket: dict[str, list[str]] = defaultdict(list)
        for bucket, key in dict.fromkeys(self._manifests):
            by_bucket[bucket].append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                try:
                    objects = [{"Key": k} for k in keys[start : start + 1000]]
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
                except Exception:
                    log.exception("Could not delete %d COPY manifest(s) in s3://%s", len(keys), bucket)
        self._manifests.clear()

    def _run_copy(
        self, cur, table: TableName | str, copy_from: str, compression: str | None, columns, max_error: int | None
    ):
        copy = build_copy(
            self.file_type,
            table=table,
            copy_from=copy_from,
            iam_role_arn=self.iam_role_arn,
            compression=compression,
            manifest=True,
            columns=columns,
            max_error=max_error,
        )
        self.outcome.copies += 1
        cur.execute(copy.sql, copy.parameters)
        cur.execute(render("load/last_copy.sql"))
        rows_loaded, query_id = cur.fetchone()
        self._last_ok_query = max(self._last_ok_query, int(query_id))
        return int(rows_loaded), int(query_id)

    def _copy_manifests(self, cur, files: list[BatchFile]) -> dict[str, FileLoad]:
        """One manifest COPY per compression; per-file counts from the load commits."""
        groups: dict[str | None, list[BatchFile]] = defaultdict(list)
        for f in files:
            groups[f.compression].append(f)
        per_file_max = self.file_type.copy_options.max_error
        loads: dict[str, FileLoad] = {}
        for n, (compression, group) in enumerate(groups.items()):
            url = self._manifest(f"batch-{n}", group)
            max_error = min(MAX_COPY_ERRORS, per_file_max * len(group))
            table = str(self.file_type.target.table)
            try:
                total, query_id = self._run_copy(cur, self.file_type.target.table, url, compression, None, max_error)
            except psycopg2.Error as err:
                raise self._copy_failure(err, group, table) from err
            lines = self._lines_scanned(cur, query_id)
            errors = self._errors_by_file(cur, query_id)
            names = {_name(u): f for f in group for u in f.entries}
            counted = 0
            for f in group:
                scanned = sum(lines.get(_name(u), 0) for u in f.entries)
                file_errors = [e for u in f.entries for e in errors.get(_name(u), [])]
                rejected = sum(self._rejected_counts.get(_name(u), 0) for u in f.entries)
                loads[f.file_id] = FileLoad(f.file_id, scanned - rejected, rejected, query_id, file_errors)
                counted += scanned - rejected
            unknown = set(lines) - set(names)
            if counted != total or unknown:
                raise _CountsDisagree(
                    f"COPY query {query_id} loaded {total} rows, the per-file load commits say {counted}"
                    + (f" and name files outside the batch {sorted(unknown)[:3]}" if unknown else "")
                )
        return loads

    def _copy_each(self, cur, files: list[BatchFile], columns: list[str] | None) -> dict[str, FileLoad]:
        """One COPY per file (into the staging table when rows are tagged), in this transaction."""
        target = self.file_type.target
        lineage = cast(str, target.file_id_column)  # used only when rows are tagged (columns), then set
        table = self.staging_table if columns is not None else target.table
        data_columns = None if columns is None else tuple(c for c in columns if c != lineage)
        merge = self.file_type.merge is not None and columns is not None
        loads: dict[str, FileLoad] = {}
        for n, f in enumerate(files):
            url = self._manifest(f"file-{n}", [f])
            copy_columns = self._copy_columns(f, cast(tuple[str, ...], data_columns)) if self.drift else data_columns
            try:
                rows_loaded, query_id = self._run_copy(cur, table, url, f.compression, copy_columns, None)
            except psycopg2.Error as err:
                raise self._copy_failure(err, [f], str(target.table)) from err
            errors = [e for es in self._errors_by_file(cur, query_id).values() for e in es]
            rejected = sum(self._rejected_counts.values())
            loads[f.file_id] = FileLoad(f.file_id, rows_loaded, rejected, query_id, errors)
            if merge:
                cur.execute(
                    render(
                        "load/tag_merge_rows.sql",
                        staging=quote_identifier(self.staging_table),
                        seq=quote_column(FILE_SEQ_COLUMN),
                        lineage=quote_column(lineage) if lineage else None,
                    ),
                    {"seq": self._file_seq(files)[f.file_id], "file_id": f.file_id},
                )
            elif columns is not None and lineage:
                cur.execute(
                    render(
                        "load/tag_staged_rows.sql",
                        staging=quote_identifier(self.staging_table),
                        lineage=quote_column(lineage),
                    ),
                    {"file_id": f.file_id},
                )
        return loads

    @staticmethod
    def _file_seq(files: list[BatchFile]) -> dict[str, int]:
        """Each file's place in the batch for merge (1 = oldest): S3 last-modified, then registration
        time, then file_id. Of two rows with one key, the later file's wins (unless ``dedupe_by``)."""
        ordered = sorted(files, key=lambda f: (*f.version_order(), f.file_id))
        return {f.file_id: n for n, f in enumerate(ordered, start=1)}

    def _lines_scanned(self, cur, query_id: int) -> dict[str, int]:
        cur.execute(render(f"load/load_commits_{self.source}.sql"), {"query_id": query_id})
        return {_name(name): int(lines) for name, lines in cur.fetchall()}

    def _errors_by_file(self, cur, query_id: int) -> dict[str, list[LoadError]]:
        """The first ``ERROR_REPORT_ROWS`` rejected rows of each file of COPY ``query_id``; sets
        ``self._rejected_counts`` (rows rejected per file name)."""
        cur.execute(render(f"load/count_file_load_errors_{self.source}.sql"), {"query_id": query_id})
        self._rejected_counts = {_name(name): int(n) for name, n in cur.fetchall()}
        if not self._rejected_counts:
            return {}
        cur.execute(
            render(f"load/file_load_errors_{self.source}.sql"), {"query_id": query_id, "limit": ERROR_REPORT_ROWS}
        )
        errors: dict[str, list[LoadError]] = defaultdict(list)
        for row in cur.fetchall():
            error = LoadError(*row)
            errors[_name(error.file_name or "")].append(error)
        return errors

    def _copy_failure(self, err: psycopg2.Error, files: list[BatchFile], table: str) -> Exception:
        """Classify a failed COPY; for a data failure find the files at fault (after a rollback)."""
        policy = database_error_policy(err)
        if policy is not Policy.QUARANTINE:
            self.conn.rollback()
            return _database_error(err, f"COPY into {table}")
        # Name the target, not this session's staging table (Redshift names the table COPY wrote).
        message = (err.pgerror or str(err)).strip().replace(f"'{self.staging_table}'", f"'{table}'")
        self.conn.rollback()
        with self.conn.cursor() as cur:
            cur.execute(render(f"load/failed_copy_id_{self.source}.sql"))
            query_id = cur.fetchone()[0]
            if query_id is not None and query_id <= self._last_ok_query:
                query_id = None  # the errors of an earlier, successful COPY: this one recorded none
            errors = self._errors_by_file(cur, query_id) if query_id else {}
            counts = dict(self._rejected_counts) if query_id else {}
        self.conn.rollback()
        per_file_max = self.file_type.copy_options.max_error
        named = set(_S3_URL.findall(message))
        culprits = []
        for f in files:
            rejected = sum(counts.get(_name(u), 0) for u in f.entries)
            file_errors = [e for u in f.entries for e in errors.get(_name(u), [])]
            in_message = any(u in named or f.url in named for u in f.entries)
            if len(files) == 1 or rejected > per_file_max or in_message:
                load = FileLoad(f.file_id, 0, rejected, query_id, file_errors)
                text = f"COPY of {f.url} into {table} failed: {message}"
                if file_errors:
                    text = (
                        f"{file_errors[0].describe()} | {rejected} rows rejected (MAXERROR {per_file_max}) "
                        f"| COPY of {f.url} into {table} failed: {message}"
                    )
                culprits.append(FileFailure(f, "data", text, load))
        return _CopyFailed(message, culprits)

    # -- schema drift -------------------------------------------------------------------------

    def _match_headers(self, cur, files: list[BatchFile], columns: list[str]) -> tuple[list[FileFailure], list[str]]:
        """``on_schema_change``: each file's header (JSON: its first record's keys, case-sensitive
        for ``JSON 'auto'``, their order immaterial) against the target's columns, by name.

        A file whose difference its policies do not allow is set aside (nothing COPYed). With
        ``add_columns`` the new names are added to the target (``new_column_type``) under ``LOCK``,
        in this transaction. Sets the staging table's extra slots (``ignore_extra``).

        :returns: (files set aside, the target's columns after any added).
        """
        target = self.file_type.target
        policies = set(self.file_type.on_schema_change)
        reserved = {target.file_id_column, FILE_SEQ_COLUMN} - {None}
        key = self.name_key
        what = "the keys of the first record" if self.json else "the header"
        known = [c for c in columns if c not in reserved]
        failures: list[FileFailure] = []
        new: dict[str, list[str]] = {}
        self._extra_slots = 0
        self.outcome.columns_added = {}
        for f in files:
            if f.header is None:
                found = "no JSON object was read" if self.json else "no header was read"
                failures.append(FileFailure(f, "data", f"{f.url}: {found} to match its columns by"))
                continue
            drift = compare(known, f.header, key)
            if self.json:  # COPY matches JSON keys by name: their order moves nothing
                drift = replace(drift, reordered=())
            extra = [*drift.added, *(f"(unnamed field {i})" for i in drift.unnamed)]
            problems = []
            if self.json and len(drift.missing) == len(known):
                problems.append("no key names a column of the table")
            if drift.duplicated:
                problems.append(f"names {list(drift.duplicated)} appear more than once")
            if drift.missing and "fill_missing" not in policies:
                problems.append("columns are missing (on_schema_change fill_missing would load them NULL)")
            if extra and not policies & {"ignore_extra", "add_columns"}:
                problems.append("the file has columns the table has not (ignore_extra drops, add_columns adds them)")
            if "add_columns" in policies:
                unusable = [n for n in extra if key(n) in reserved or not IDENTIFIER.match(key(n))]
                if unusable:
                    problems.append(
                        f"{unusable} cannot become columns (lower-case letters, digits, '_' and '$', not a name "
                        "the load fills)"
                    )
            if problems:
                failures.append(
                    FileFailure(
                        f,
                        "data",
                        f"{what} of {f.url} does not match table {target.table} ({drift.describe()}): "
                        + "; ".join(problems)
                        + f" | on_schema_change {list(self.file_type.on_schema_change)}",
                    )
                )
                continue
            if "add_columns" in policies and drift.added:
                new[f.file_id] = [key(n) for n in drift.added]
            if "ignore_extra" in policies and not self.json:  # COPY skips a JSON file's other keys itself
                self._extra_slots = max(self._extra_slots, len(extra))
            if drift:
                log.info("%s: header differs from %s (%s): loaded by name", f.url, target.table, drift.describe())
        if failures or not new:
            return failures, columns
        table = target.table.quoted
        cur.execute(render("load/lock_target.sql", target=table))
        columns = table_columns(cur, self.file_type)  # another run may have added some meanwhile
        for file_id, names in new.items():
            for name in names:
                if name not in columns:
                    cur.execute(
                        render(
                            "load/add_column.sql",
                            table=table,
                            column=quote_identifier(name),
                            type=self.file_type.new_column_type,
                        )
                    )
                    columns.append(name)
                    self.outcome.columns_added.setdefault(file_id, []).append(name)
                    log.warning("Added column %s %s to %s", name, self.file_type.new_column_type, target.table)
        return failures, columns

    def _copy_columns(self, f: BatchFile, data_columns: tuple[str, ...]) -> tuple[str, ...]:
        """The COPY column list of ``f``: its header's fields in file order, each the table column of
        the same name (so a moved column never lands in its neighbour's place), or a staging-only
        extra slot for a field the table does not have (``ignore_extra``: never inserted).

        JSON: the table's columns its first record has a key for, in table order (COPY fills them by
        key; the columns left out load NULL or their default, the other keys are skipped)."""
        if self.json:
            named = {self.name_key(k) for k in f.header or ()}
            return tuple(c for c in data_columns if self.name_key(c) in named)
        by_name = {fold(c): c for c in data_columns}
        out, slot = [], 0
        for name in f.header or ():
            column = by_name.get(fold(name)) if fold(name) else None
            if column is None:
                column, slot = f"{EXTRA_COLUMN}{slot}", slot + 1
            out.append(column)
        return tuple(out)

    # -- checks -------------------------------------------------------------------------------

    def _over_max_error(self, files: list[BatchFile], loads: dict[str, FileLoad]) -> list[FileFailure]:
        """Files rejected more rows than the file type allows one file (a manifest COPY's MAXERROR
        covers the whole batch, so each file is held to its own limit here)."""
        limit = self.file_type.copy_options.max_error
        out = []
        for f in files:
            load = loads[f.file_id]
            if load.rows_rejected > limit:
                first = load.first_error or "no detail"
                out.append(
                    FileFailure(
                        f,
                        "data",
                        f"{first} | {load.rows_rejected} rows rejected, more than MAXERROR {limit} allows one file",
                        FileLoad(f.file_id, 0, load.rows_rejected, load.copy_query_id, load.errors),
                    )
                )
        return out

    def _changed_objects(self, files: list[BatchFile]) -> list[FileFailure]:
        """Files whose object is no longer the registered version (HEAD, in parallel)."""
        checked = [f for f in files if f.etag]
        with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
            found = list(pool.map(lambda f: object_change(self.s3, f.bucket, f.key, f.etag, f.size_bytes), checked))
        return [FileFailure(f, "changed", why) for f, why in zip(checked, found, strict=True) if why]

    def _newer_versions_loaded(self, cur, files: list[BatchFile]) -> list[FileFailure]:
        out = []
        for f in files:
            versions = register.loaded_versions(cur, self.settings, f.file_id, f.bucket, f.key)
            newer = [
                v
                for v in versions
                if (v["last_modified"] or datetime.min, v["registered_at"] or datetime.min) > f.version_order()
            ]
            if newer:
                out.append(
                    FileFailure(
                        f,
                        "newer_version",
                        f"{f.url} (last modified {f.last_modified}) is older than version {newer[-1]['file_id']} "
                        f"(last modified {newer[-1]['last_modified']}), whose rows are already in "
                        f"{self.file_type.target.table}: loading it would replace newer rows with older ones, so "
                        "nothing was loaded. The file is kept where it is.",
                    )
                )
        return out

    # -- staging table -> target --------------------------------------------------------------

    def _merge_key_problems(self, cur, files: list[BatchFile]) -> list[FileFailure]:
        """Files whose staged rows cannot be merged: a key column without a value, or two rows of
        one key that nothing orders (same file, and the same ``dedupe_by`` value or none)."""
        merge = cast(Merge, self.file_type.merge)  # called for merge file types only
        seq = self._file_seq(files)
        by_seq = {seq[f.file_id]: f for f in files}
        identifiers = {
            "staging": quote_identifier(self.staging_table),
            "seq": quote_column(FILE_SEQ_COLUMN),
            "keys": [quote_column(k) for k in merge.keys],
            "dedupe_by": quote_column(merge.dedupe_by) if merge.dedupe_by else None,
        }
        problems: dict[int, list[str]] = defaultdict(list)
        cur.execute(render("load/merge_null_keys.sql", **identifiers))
        for n, rows in cur.fetchall():
            problems[n].append(f"{rows} row(s) have no value in merge key column(s) {', '.join(merge.keys)}")
        cur.execute(render("load/merge_tied_keys.sql", **identifiers))
        for n, rows, example in cur.fetchall():
            ordered = f" with the same {merge.dedupe_by}" if merge.dedupe_by else ""
            fix = "" if merge.dedupe_by else "; set merge.dedupe_by to the column that orders versions of a key"
            problems[n].append(
                f"{rows} rows share a merge key ({', '.join(merge.keys)}) with another row of the file{ordered}, "
                f"e.g. {example}: which one is newest cannot be told{fix}"
            )
        table = self.file_type.target.table
        return [
            FileFailure(by_seq[n], "data", f"cannot merge {by_seq[n].url} into {table}: " + "; ".join(why))
            for n, why in sorted(problems.items())
        ]

    def _publish(self, cur, files: list[BatchFile], columns: list[str]) -> int:
        """Staging table -> target under ``LOCK``, after the file-scoped deletes.

        Deletes first, in the same transaction: for ``load_mode: replace`` every row; otherwise the
        rows earlier loads of these very files left (forced reloads), and with ``on_new_version:
        replace`` the rows of the earlier versions of the same keys (those become ``REPLACED``).
        Then ``load_mode: merge`` upserts (see :meth:`_merge`); the other modes insert every row.

        :returns: rows deleted for earlier versions.
        """
        target = self.file_type.target
        table = target.table.quoted
        lineage = quote_column(target.file_id_column) if target.file_id_column else None
        # Serialise writers of the target (two file types may share it; AWS "LOCK" avoids
        # serializable-isolation errors between concurrent DELETE/INSERT transactions).
        cur.execute(render("load/lock_target.sql", target=table))
        replaced = 0
        if lineage and target.on_new_version == "replace" and self.file_type.load_mode != "replace":
            for f in files:
                for version in register.loaded_versions(cur, self.settings, f.file_id, f.bucket, f.key):
                    cur.execute(
                        render("load/delete_file_rows.sql", target=table, lineage=lineage),
                        {"file_id": version["file_id"]},
                    )
                    deleted = cur.rowcount
                    register.mark_replaced(cur, self.settings, version["file_id"], f.file_id, deleted)
                    replaced += deleted
                    log.info(
                        "Replaced version %s of %s: %d rows deleted from %s", version["file_id"], f.url, deleted, table
                    )
        if self.file_type.load_mode == "replace":
            cur.execute(render("load/delete_all.sql", target=table))
        elif lineage:
            cur.execute(
                render("load/delete_files_rows.sql", target=table, lineage=lineage),
                {"file_ids": tuple(f.file_id for f in files)},
            )
            if cur.rowcount:
                log.info("Deleted %d rows earlier loads of these files left in %s", cur.rowcount, table)
        insert = ", ".join(quote_column(c) for c in columns)
        if self.file_type.merge:
            self._merge(cur, insert)
        else:
            cur.execute(
                render(
                    "load/insert_from_staging.sql",
                    target=table,
                    columns=insert,
                    staging=quote_identifier(self.staging_table),
                )
            )
        cur.execute(render("load/drop_staging.sql", staging=quote_identifier(self.staging_table)))
        return replaced

    def _merge(self, cur, columns: str) -> None:
        """``load_mode: merge``, Redshift's delete + insert upsert (AWS "Use a staging table to
        perform a merge (upsert)"): one row per key is kept from the staging table (the greatest
        ``dedupe_by``, then the latest file), the target's rows of those keys are deleted (with
        ``dedupe_by``: only those not newer), and the kept rows inserted (with ``dedupe_by``: those
        whose key has no newer row left). Sets ``outcome.rows_updated`` (target rows replaced)."""
        merge = cast(Merge, self.file_type.merge)  # called for merge file types only
        identifiers = {
            "target": self.file_type.target.table.quoted,
            "staging": quote_identifier(self.staging_table),
            "winners": quote_identifier(self.winners_table),
            "seq": quote_column(FILE_SEQ_COLUMN),
            "columns": columns,
            "keys": [quote_column(k) for k in merge.keys],
            "dedupe_by": quote_column(merge.dedupe_by) if merge.dedupe_by else None,
        }
        cur.execute(render("load/merge_keep_newest.sql", **identifiers))
        cur.execute(render("load/merge_delete_matched.sql", **identifiers))
        self.outcome.rows_updated += cur.rowcount
        cur.execute(render("load/merge_insert.sql", **identifiers))
        inserted = cur.rowcount
        cur.execute(render("load/drop_staging.sql", staging=quote_identifier(self.winners_table)))
        log.info(
            "Merged into %s: %d row(s) written, %d of them replacing a row of the same key",
            self.file_type.target.table,
            inserted,
            self.outcome.rows_updated,
        )


# -- helpers -----------------------------------------------------------------------------------


def _name(url: str) -> str:
    """How STL_LOAD_COMMITS / STL_LOAD_ERRORS name an object: ``CHAR(256)``, blank-padded."""
    return url.strip()[:FILENAME_CHARS].rstrip()


def _ambiguous_names(files: list[BatchFile]) -> bool:
    """True when two entries share their first 256 characters: the load commits could not tell them
    apart, so such a batch is loaded one COPY per file."""
    names = [_name(u) for f in files for u in f.entries]
    return len(names) != len(set(names))


def _load_record(load: FileLoad) -> dict[str, Any]:
    return {
        "file_id": load.file_id,
        "copy_query_id": load.copy_query_id,
        "rows_loaded": load.rows_loaded,
        "rows_rejected": load.rows_rejected,
        "first_error": load.first_error,
        "error_report_key": load.error_report_key,
    }


def _database_error(err: psycopg2.Error, doing: str) -> Exception:
    """The Airflow exception for a warehouse error that is not the file's data."""
    message = f"{doing} failed: {(err.pgerror or str(err)).strip()}"
    policy = database_error_policy(err)
    if policy is Policy.RETRY:
        return RetryableLoadError(message)
    if policy is Policy.FAIL:
        return LoadConfigError(message + " | fix the configuration or permissions, then replay the file(s)")
    return err  # a data error outside a COPY: let it surface as it is


def table_columns(cur, file_type: FileType) -> list[str]:
    """The target's column names in order, checked to include ``target.file_id_column`` and the
    ``merge`` key and ``dedupe_by`` columns.

    :raises LoadConfigError: a column is missing; the message says what to add or fix where.
    """
    target = file_type.target
    cur.execute(render("load/select_no_rows.sql", target=target.table.quoted))
    columns = [d[0] for d in cur.description]
    if target.file_id_column and target.file_id_column not in columns:
        raise LoadConfigError(
            f"table {target.table} has no column {target.file_id_column!r} (target.file_id_column of file type "
            f"{file_type.name}): add {target.file_id_column} VARCHAR(64) to the table and to "
            f"include/sql/{target.ddl}; nothing was loaded"
        )
    if file_type.merge:
        named = [*file_type.merge.keys, *([file_type.merge.dedupe_by] if file_type.merge.dedupe_by else [])]
        missing = [c for c in named if c not in columns]
        if missing:
            raise LoadConfigError(
                f"table {target.table} has no column(s) {missing} named in merge: of file type {file_type.name} "
                f"(its columns: {columns}); fix merge.keys / merge.dedupe_by; nothing was loaded"
            )
    if FILE_SEQ_COLUMN in columns:
        raise LoadConfigError(f"table {target.table} has a column {FILE_SEQ_COLUMN!r}, a name the load reserves")
    return columns


def object_change(s3, bucket: str, key: str, etag: str | None, size_bytes: int | None) -> str | None:
    """Why ``s3://bucket/key`` is no longer the registered version, or None when it still is.

    The ETag identifies the content (AWS "Checking object integrity"). A multipart object copied by
    this pipeline (archive, quarantine and back) gets a new ETag of the same bytes: for a registered
    multipart ETag (``...-N``) an equal size is accepted.
    """
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return f"s3://{bucket}/{key} was deleted after it was registered (ETag {etag})"
        raise
    now = head["ETag"].strip('"')
    if etag is None or now == etag.strip('"'):
        return None
    if "-" in etag and size_bytes is not None and head.get("ContentLength") == size_bytes:
        return None
    return (
        f"s3://{bucket}/{key} changed after it was registered: ETag {etag} registered, {now} now "
        "(a newer upload overwrote it; that upload is registered as its own file). This version can no "
        "longer be read, so it was not loaded"
    )


def write_error_report(s3, bucket: str, key: str, errors: list[LoadError]) -> None:
    """Write a file's rejected rows as CSV (line, column, type, code, reason, raw value, file)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["line_number", "column_name", "column_type", "error_code", "error_message", "raw_value", "file_name"]
    )
    for e in errors:
        writer.writerow(
            [e.line_number, e.column_name, e.column_type, e.error_code, e.error_message, e.raw_value, e.file_name]
        )
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().encode(), ContentType="text/csv")
