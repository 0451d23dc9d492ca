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
  per file are that COPY's ``pg_last_copy_count()``.

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

import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import psycopg2

from redshift_ingest import register
from redshift_ingest.config import FileType, Settings, TableName, quote_identifier
from redshift_ingest.copy_sql import build_copy, quote_column
from redshift_ingest.errors import LoadConfigError, Policy, RetryableLoadError, database_error_policy
from redshift_ingest.sql import render

log = logging.getLogger(__name__)

MANIFEST = "manifest"
PER_FILE = "per_file"
ERROR_REPORT_ROWS = 1000  # rows of each file's rejected-rows report; STL_LOAD_ERRORS keeps them anyway
S3_CONCURRENCY = 8  # parallel HEAD / copy requests to S3
FILENAME_CHARS = 256  # STL_LOAD_COMMITS.filename and STL_LOAD_ERRORS.filename are CHAR(256)
MAX_COPY_ERRORS = 100000  # the largest MAXERROR Redshift accepts (AWS "COPY parameter reference")
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
    :param manifest_prefix: where this batch's manifests are written (``<staging>_manifests/...``).
    :param error_report_key: ``(file, failed) -> key`` of a file's rejected-rows report.
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
        manifest_prefix: str,
        error_report_key: Callable[[BatchFile, bool], str],
    ) -> None:
        self.conn = conn
        self.s3 = s3
        self.file_type = file_type
        self.settings = settings
        self.iam_role_arn = iam_role_arn
        self.run_id = run_id
        self.manifest_prefix = manifest_prefix
        self.error_report_key = error_report_key
        self.source = settings.load_errors_source
        self.outcome = BatchOutcome()
        self.staging_table = f"stage_{file_type.name}"
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
        """
        remaining = list(files)
        mode = PER_FILE if self.file_type.target.file_id_column or _ambiguous_names(remaining) else MANIFEST
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
            blamed = {c.file.file_id for c in culprits}
            for culprit in culprits:
                log.warning("Set aside %s (%s): %s", culprit.file.url, culprit.kind, culprit.message)
            self.outcome.failures.extend(culprits)
            remaining = [f for f in remaining if f.file_id not in blamed]
        return self.outcome

    def _attempt(self, files: list[BatchFile], mode: str) -> list[FileFailure]:
        """One transaction over ``files``. Returns the culprits (rolled back) or [] (committed)."""
        target = self.file_type.target
        tagged = bool(target.file_id_column)
        self.outcome.transactions += 1
        try:
            with self.conn.cursor() as cur:
                columns = table_columns(cur, self.file_type) if tagged else None
                if tagged:
                    cur.execute(
                        render(
                            "load/create_staging.sql",
                            staging=quote_identifier(self.staging_table),
                            target=target.table.quoted,
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
                # A file whose every row was rejected loaded nothing: it fails like a bad file, but
                # adds nothing to roll back; it is set aside after the others commit.
                empty = [f for f in files if loads[f.file_id].rows_loaded == 0 and loads[f.file_id].rows_rejected > 0]
                empty_ids = {f.file_id for f in empty}
                good = [f for f in files if f.file_id not in empty_ids]
                if tagged and good:
                    self.outcome.rows_replaced = self._publish(cur, good, cast(list[str], columns))  # set when tagged
                for f in files:
                    load = loads[f.file_id]
                    if load.rows_rejected:
                        load.error_report_key = self.error_report_key(f, f.file_id in empty_ids)
                recorded = register.record_loads(
                    cur,
                    self.settings,
                    self.run_id,
                    [_load_record(loads[f.file_id]) for f in good],
                )
                if recorded != len(good):
                    self.conn.rollback()
                    raise register.ClaimLost(
                        f"the register recorded {recorded} of {len(good)} loads: some files are no longer "
                        f"claimed by run {self.run_id} (or were loaded already); the COPY was rolled back"
                    )
            # Written before the commit: a report without a load is harmless, a load whose report
            # is missing would hide rejected rows.
            for f in files:
                load = loads[f.file_id]
                if load.error_report_key:
                    write_error_report(self.s3, f.bucket, load.error_report_key, load.errors)
            self.conn.commit()
        except (_CopyFailed, _CountsDisagree, register.ClaimLost):
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
        key = f"{self.manifest_prefix}{name}.manifest"
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")
        return f"s3://{bucket}/{key}"

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
        loads: dict[str, FileLoad] = {}
        for n, f in enumerate(files):
            url = self._manifest(f"file-{n}", [f])
            try:
                rows_loaded, query_id = self._run_copy(cur, table, url, f.compression, data_columns, None)
            except psycopg2.Error as err:
                raise self._copy_failure(err, [f], str(target.table)) from err
            errors = [e for es in self._errors_by_file(cur, query_id).values() for e in es]
            rejected = sum(self._rejected_counts.values())
            loads[f.file_id] = FileLoad(f.file_id, rows_loaded, rejected, query_id, errors)
            if columns is not None:
                cur.execute(
                    render(
                        "load/tag_staged_rows.sql",
                        staging=quote_identifier(self.staging_table),
                        lineage=quote_column(lineage),
                    ),
                    {"file_id": f.file_id},
                )
        return loads

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

    def _publish(self, cur, files: list[BatchFile], columns: list[str]) -> int:
        """Staging table -> target under ``LOCK``, after the file-scoped deletes.

        Deletes first, in the same transaction: for ``load_mode: replace`` every row; otherwise the
        rows earlier loads of these very files left (forced reloads), and with ``on_new_version:
        replace`` the rows of the earlier versions of the same keys (those become ``REPLACED``).

        :returns: rows deleted for earlier versions.
        """
        target = self.file_type.target
        table = target.table.quoted
        lineage = quote_column(cast(str, target.file_id_column))  # set: only tagged loads publish
        # Serialise writers of the target (two file types may share it; AWS "LOCK" avoids
        # serializable-isolation errors between concurrent DELETE/INSERT transactions).
        cur.execute(render("load/lock_target.sql", target=table))
        replaced = 0
        if target.on_new_version == "replace" and self.file_type.load_mode == "append":
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
        else:
            cur.execute(
                render("load/delete_files_rows.sql", target=table, lineage=lineage),
                {"file_ids": tuple(f.file_id for f in files)},
            )
            if cur.rowcount:
                log.info("Deleted %d rows earlier loads of these files left in %s", cur.rowcount, table)
        data = ", ".join(quote_column(c) for c in columns if c != target.file_id_column)
        cur.execute(
            render(
                "load/insert_from_staging.sql",
                target=table,
                columns=data,
                lineage=lineage,
                staging=quote_identifier(self.staging_table),
            )
        )
        cur.execute(render("load/drop_staging.sql", staging=quote_identifier(self.staging_table)))
        return replaced


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
    """The target's column names in order, checked to include ``target.file_id_column``.

    :raises LoadConfigError: the column is missing; the message says what to add where.
    """
    target = file_type.target
    cur.execute(render("load/select_no_rows.sql", target=target.table.quoted))
    columns = [d[0] for d in cur.description]
    if target.file_id_column not in columns:
        raise LoadConfigError(
            f"table {target.table} has no column {target.file_id_column!r} (target.file_id_column of file type "
            f"{file_type.name}): add {target.file_id_column} VARCHAR(64) to the table and to "
            f"include/sql/{target.ddl}; nothing was loaded"
        )
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
