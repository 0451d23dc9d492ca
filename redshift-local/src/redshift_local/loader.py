"""Run one ``COPY ... FROM 's3://...'`` on the client's own backend session.

The proxy reads the S3 objects, parses and validates every record in Python, and streams only the
good rows to PostgreSQL with ``COPY ... FROM STDIN (FORMAT csv)`` on the client's backend connection,
so the load is part of the client's transaction exactly as on Redshift. Rejected rows go to
STL_LOAD_ERRORS (via ``Recorder``, a separate connection). More than MAXERROR rejected rows abort the
backend COPY with CopyFail and the COPY fails with Redshift's message (AWS "COPY parameter
reference", MAXERROR; "STL_LOAD_ERRORS").
"""

from __future__ import annotations

import bz2
import io
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from redshift_local import fastpath, protocol
from redshift_local.catalog import LoadCommitRow, LoadErrorRow, Recorder
from redshift_local.columnar import ColumnarMismatch, columnar_records
from redshift_local.convert import Column, FieldError, PgInput, make_converter
from redshift_local.copy_command import CopySpec, CopySyntaxError
from redshift_local.records import Record, csv_records, json_records, load_jsonpaths, text_records
from redshift_local.sources import (
    S3Object,
    SourceError,
    as_utf8,
    list_prefix,
    open_object,
    read_manifest,
    read_small_object,
)
from redshift_local.sqltext import quote_ident, quote_literal

log = logging.getLogger(__name__)

_SEND_THRESHOLD = 256 * 1024
_PASS_CHUNK = 1024 * 1024
_CLIENT_CHECK_EVERY = 5000


def failed_message(table: str) -> str:
    """Redshift's error text when a load exceeds MAXERROR (COPY examples; loading tutorial)."""
    return f"Load into table '{table}' failed.  Check 'stl_load_errors' system table for details."


class LoadFailure(Exception):
    """The COPY cannot run (before any data reached the backend): message and SQLSTATE."""

    def __init__(self, message: str, code: str = "XX000") -> None:
        super().__init__(message)
        self.code = code


class ClientGone(Exception):
    """The client disconnected while the proxy was loading for it."""


class BackendSession(Protocol):
    """What the loader needs from the client's session (implemented by ``session.ClientSession``)."""

    backend: protocol.MessageSocket
    backend_pid: int | None
    tx_status: bytes  # of the last ReadyForQuery: I idle, T in a transaction block, E failed block

    def internal(self, sql: str) -> tuple[list[list[str | None]], bytes | None]: ...

    def wait_ready(self) -> tuple[bytes | None, str | None]: ...

    def client_gone(self) -> bool: ...


@dataclass
class CopyOutcome:
    """The result of a COPY: rows loaded, rows rejected, and how it ended."""

    query_id: int
    loaded: int = 0
    rejected: int = 0
    error_message: str | None = None  # our own failure text (SQLSTATE XX000)
    backend_error: bytes | None = None  # PostgreSQL's ErrorResponse payload, forwarded as is
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_message is None and self.backend_error is None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _csv_line(values: list[str | None]) -> str:
    return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values) + "\n"


_STREAM_ERRORS = (OSError, EOFError, zlib.error, ValueError, SourceError)
try:  # pragma: no cover - optional dependency always present in the venv
    import zstandard

    _STREAM_ERRORS = (*_STREAM_ERRORS, zstandard.ZstdError)
except ImportError:  # pragma: no cover
    pass
_ = bz2  # bz2 raises OSError/EOFError, already covered


class S3Copy:
    """One COPY run. ``run()`` returns a ``CopyOutcome``; raises ``LoadFailure`` or ``ClientGone``."""

    def __init__(
        self,
        session: BackendSession,
        spec: CopySpec,
        recorder: Recorder,
        s3_client: Callable[[str | None], Any],
        query_id: int,
        database: str,
    ) -> None:
        self.session = session
        self.spec = spec
        self.recorder = recorder
        self.s3_client = s3_client
        self.query_id = query_id
        self.database = database
        self.start = _utcnow()
        self.errors: list[LoadErrorRow] = []
        self.table_oid = 0
        self.user_id = 0
        self.bytes_scanned = 0
        self.loaded_bytes = 0
        self.objects: list[S3Object] = []
        self.files: list[LoadCommitRow] = []  # one per object read, for STL_LOAD_COMMITS
        self.replacements: list[LoadErrorRow] = []  # STL_REPLACEMENTS (first 100 lines)
        self._current: tuple[S3Object, Record] | None = None
        self.passthrough: fastpath.Passthrough | None = None
        self.dialect = (",", '"')  # DELIMITER and QUOTE of the backend COPY FROM STDIN (FORMAT csv)

    # -- preparation (nothing sent to the backend COPY yet) ---------------------------------------

    def _columns(self) -> list[Column]:
        rows, error = self.session.internal(
            "SELECT a.attname, CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END,"
            " a.atttypmod, a.attnotnull, a.attidentity <> '', a.attrelid::int,"
            " (SELECT oid FROM pg_roles WHERE rolname = current_user)::int"
            " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " LEFT JOIN pg_type bt ON bt.oid = t.typbasetype"
            f" WHERE a.attrelid = to_regclass({quote_literal(self.spec.table)})"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
        if error is not None:
            raise LoadFailure(protocol.parse_fields(error).get("M", "catalog lookup failed"))
        if not rows:
            raise LoadFailure(f'relation "{self.spec.table_name}" does not exist', "42P01")
        self.table_oid, self.user_id = int(rows[0][5]), int(rows[0][6] or 0)
        return [Column(r[0], r[1], int(r[2]), r[3] == "t", r[4] == "t") for r in rows]

    def _targets(self, columns: list[Column]) -> list[Column]:
        """Column mapping (COPY parameter reference, "Column list"; EXPLICIT_IDS)."""
        if self.spec.columns is None:
            return [c for c in columns if self.spec.explicit_ids or not c.identity]
        by_name = {c.name: c for c in columns}
        targets = []
        for name in self.spec.columns:
            if name not in by_name:
                raise LoadFailure(f'column "{name}" of relation "{self.spec.table_name}" does not exist', "42703")
            column = by_name[name]
            if column.identity and not self.spec.explicit_ids:
                raise LoadFailure(f"Cannot set an IDENTITY column to a value (column '{name}'); use EXPLICIT_IDS")
            targets.append(column)
        return targets

    def _resolve_objects(self) -> list[S3Object]:
        client = self.s3_client(self.spec.region)
        try:
            if self.spec.manifest:
                return read_manifest(client, self.spec.source)
            return list_prefix(client, self.spec.source)
        except SourceError as exc:
            raise LoadFailure(str(exc)) from exc

    def _jsonpaths(self, ncols: int) -> list[list[str | int]] | None:
        if self.spec.format != "JSON" or not (self.spec.json_paths or "").lower().startswith("s3://"):
            return None
        try:
            data = read_small_object(self.s3_client(self.spec.region), self.spec.json_paths, "JSONPaths file")
            return load_jsonpaths(data, ncols)
        except (SourceError, CopySyntaxError) as exc:
            raise LoadFailure(str(exc)) from exc

    # -- the load ---------------------------------------------------------------------------------

    def _open(self, obj: S3Object, targets: list[Column], paths) -> tuple[Any, Any, Iterator[Record]]:
        """``(stream to close, reader counting the bytes read from S3, records)`` of one object."""
        client = self.s3_client(self.spec.region)
        if self.spec.format in ("PARQUET", "ORC"):
            reader, records = columnar_records(client, obj, self.spec.format, targets, self.spec.serialize_to_json)
            return reader, reader, records
        stream, raw_reader = open_object(client, obj, self.spec.compression)
        stream = as_utf8(stream, self.spec.encoding)
        if fastpath.eligible(self.spec):
            return stream, raw_reader, None
        return stream, raw_reader, self._records(stream, targets, paths)

    def _load_delimited(
        self, obj: S3Object, stream, targets: list[Column], converters, outcome: CopyOutcome
    ) -> tuple[int, str | None]:
        """Load one delimited text / CSV object: chunks ``fastpath.Passthrough`` accepts go to the backend
        COPY as they are; from the first chunk it does not accept on, the batch path takes over.
        Returns ``(records scanned, failure or None)``."""
        passthrough = self.passthrough
        if passthrough is None:
            return self._load_batches(obj, stream, targets, converters, outcome)
        for _ in range(self.spec.ignore_header):
            if not stream.readline():
                return 0, None
        scanned, pending, chunks = 0, b"", 0
        while True:
            data = stream.read(_PASS_CHUNK)
            eof = not data
            data = pending + data
            if eof and not data:
                return scanned, None
            cut = len(data) if eof else data.rfind(b"\n") + 1
            if cut == 0:
                pending = data
                continue
            chunk, pending = data[:cut], data[cut:]
            whole = chunk if chunk.endswith(b"\n") else chunk + b"\n"
            if not passthrough.accepts(whole):
                rest = io.BufferedReader(fastpath.Prefixed(chunk + pending, stream), _PASS_CHUNK)
                first_line = self.spec.ignore_header + scanned + 1
                more, failure = self._load_batches(obj, rest, targets, converters, outcome, first_line)
                return scanned + more, failure
            rows = whole.count(b"\n")
            scanned += rows
            outcome.loaded += rows
            self.loaded_bytes += len(whole)
            self.session.backend.send(protocol.copy_data(whole))
            chunks += 1
            if chunks % 16 == 0 and self.session.client_gone():
                raise ClientGone
            if eof:
                return scanned, None

    def _load_batches(
        self, obj: S3Object, stream, targets: list[Column], converters, outcome: CopyOutcome, first_line=None
    ) -> tuple[int, str | None]:
        """Load delimited text / CSV a batch at a time (``fastpath``); the same rows, errors and stopping
        point as the per-record loop. Returns ``(records scanned, failure or None)``."""
        spec, ncols, scanned = self.spec, len(targets), 0
        for batch in fastpath.text_batches(stream, spec, first_line):
            if self.session.client_gone():
                raise ClientGone
            regular, others = fastpath.split_batch(batch, ncols, spec.null_as, spec.fill_record)
            errors: dict[int, tuple] = {}
            columns: list[list[str | None]] = []
            if regular:
                rows = batch.fields if len(regular) == len(batch.fields) else [batch.fields[i] for i in regular]
                raw_columns = fastpath.apply_null_as(list(zip(*rows, strict=True)), spec.null_as)
                columns = [
                    fastpath.convert_column(column, convert, spec, values, errors)
                    for column, convert, values in zip(targets, converters, raw_columns, strict=True)
                ]
            if not others and not errors:
                scanned += len(regular)
                outcome.loaded += len(regular)
                self._send([fastpath.csv_rows(zip(*columns, strict=True), *self.dialect)])
                continue
            good: list[tuple] = []
            position = {index: k for k, index in enumerate(regular)}
            failure = None
            for index in range(len(batch.fields)):
                scanned += 1
                if index in others:
                    row = self._convert(obj, others[index], targets, converters)
                    if row is not None:
                        good.append(tuple(row))
                        continue
                elif position[index] in errors:
                    column, exc, raw = errors[position[index]]
                    record = Record(batch.starts[index], batch.raws(index))
                    self._reject(obj, record, column, (exc.code, exc.reason, exc.position), raw or "")
                else:
                    good.append(tuple(col[position[index]] for col in columns))
                    continue
                if len(self.errors) > spec.max_error:
                    failure = failed_message(spec.table_name)
                    break
            outcome.loaded += len(good)
            if good:
                self._send([fastpath.csv_rows(iter(good), *self.dialect)])
            if failure:
                return scanned, failure
        return scanned, None

    def _records(self, stream, targets: list[Column], paths) -> Iterator[Record]:
        if self.spec.format == "CSV":
            return csv_records(stream, self.spec, len(targets))
        if self.spec.format == "JSON":
            names = [c.name.lower() if self.spec.json_paths == "auto ignorecase" else c.name for c in targets]
            return json_records(stream, self.spec, names, paths)
        return text_records(stream, self.spec, len(targets))

    def _reject(self, obj: S3Object, record: Record, column: Column | None, error: tuple[int, str, int], raw: str):
        code, reason, position = error
        self.errors.append(
            LoadErrorRow(
                filename=obj.url,
                line_number=record.line_number,
                colname=column.name if column else "",
                type=column.redshift_type if column else "",
                col_length=column.col_length if column else "",
                position=position,
                raw_line=record.raw_line,
                raw_field_value=raw,
                err_code=code,
                err_reason=reason,
            )
        )

    def run(self) -> CopyOutcome:
        """Load the data. See the class docstring for what is raised and returned."""
        columns = self._columns()
        targets = self._targets(columns)
        self.objects = self._resolve_objects()
        paths = self._jsonpaths(len(targets))
        pg_input = PgInput(self.recorder.cursor)
        converters = [make_converter(c, self.spec, pg_input, self._replaced) for c in targets]
        column_list = ", ".join(quote_ident(c.name) for c in targets)
        outcome = CopyOutcome(self.query_id)
        self.passthrough = fastpath.Passthrough.build(self.spec, targets)
        if self.passthrough is not None:  # the backend COPY reads the file's own delimiter and quote
            self.dialect = (self.passthrough.delimiter, self.passthrough.quote)
        dialect = f"DELIMITER {quote_literal(self.dialect[0])}, QUOTE {quote_literal(self.dialect[1])}"

        backend = self.session.backend
        backend.send(
            protocol.query(
                f"COPY {self.spec.table} ({column_list}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8', {dialect})"
            )
        )
        kind, payload = backend.read_message()
        if kind != b"G":  # the backend refused the COPY (privileges, ...)
            outcome.backend_error = payload if kind == b"E" else None
            self.session.wait_ready()
            self._finish(outcome, "aborted")
            return outcome

        failure: str | None = None
        buffer: list[str] = []
        buffered = 0
        try:
            seen = 0
            for obj in self.objects:
                stream, raw_reader, records = self._open(obj, targets, paths)
                file_start, scanned, rejected_before = _utcnow(), 0, len(self.errors)
                try:
                    if records is None:  # delimited text / CSV: the batch path
                        if buffer:
                            self._send(buffer)
                            buffer, buffered = [], 0
                        scanned, failure = self._load_delimited(obj, stream, targets, converters, outcome)
                        records = ()
                    for record in records:
                        seen += 1
                        scanned += 1
                        if seen % _CLIENT_CHECK_EVERY == 0 and self.session.client_gone():
                            raise ClientGone
                        row = self._convert(obj, record, targets, converters)
                        if row is None:
                            if len(self.errors) > self.spec.max_error:
                                failure = failed_message(self.spec.table_name)
                                break
                            continue
                        line = _csv_line(row)
                        buffer.append(line)
                        buffered += len(line)
                        outcome.loaded += 1
                        if buffered >= _SEND_THRESHOLD:
                            self._send(buffer)
                            buffer, buffered = [], 0
                finally:
                    self.bytes_scanned += raw_reader.bytes_read
                    stream.close()
                    self.files.append(
                        LoadCommitRow(
                            filename=obj.url,
                            lines_scanned=scanned,
                            rejected=len(self.errors) - rejected_before,
                            bytes_scanned=raw_reader.bytes_read,
                            start=file_start,
                            end=_utcnow(),
                            etag=obj.etag,
                            last_modified=obj.last_modified,
                        )
                    )
                if failure:
                    break
        except ColumnarMismatch as exc:
            failure = f"Load into table '{self.spec.table_name}' failed: {exc}"
        except _STREAM_ERRORS as exc:
            failure = f"Load into table '{self.spec.table_name}' failed: error reading {exc.__class__.__name__}: {exc}"
        except ClientGone:
            raise
        except Exception as exc:
            log.exception("COPY %s failed", self.query_id)
            failure = f"Load into table '{self.spec.table_name}' failed: {exc}"

        if failure is not None:
            backend.send(protocol.copy_fail(failure))
            self.session.wait_ready()
            outcome.error_message = failure
            outcome.loaded = 0
            outcome.rejected = len(self.errors)
            self._finish(outcome, "aborted")
            return outcome

        if buffer:
            self._send(buffer)
        backend.send(protocol.copy_done())
        error, _tag = self.session.wait_ready()
        outcome.rejected = len(self.errors)
        if error is not None:
            outcome.backend_error = error
            outcome.loaded = 0
            self._finish(outcome, "aborted")
            return outcome
        table = self.spec.table_name
        outcome.notices.append(f"Load into table '{table}' completed, {outcome.loaded} record(s) loaded successfully.")
        if outcome.rejected:
            outcome.notices.append(
                f"Load into table '{table}' completed, {outcome.rejected} record(s) could not be loaded.  "
                "Check 'stl_load_errors' system table for details."
            )
        self._finish(outcome, "completed")
        return outcome

    def _replaced(self, column: Column) -> None:
        """ACCEPTINVCHARS replaced a character in ``column`` of the current record (STL_REPLACEMENTS)."""
        if self._current is None or len(self.replacements) >= 100:
            return
        obj, record = self._current
        if self.replacements and self.replacements[-1].line_number == record.line_number:
            return  # one row per line: its first column with a replacement
        self.replacements.append(
            LoadErrorRow(obj.url, record.line_number, column.name, "", "", 0, record.raw_line, "", 0, "")
        )

    def _convert(self, obj: S3Object, record: Record, targets: list[Column], converters) -> list[str | None] | None:
        self._current = (obj, record)
        if record.error is not None:
            self._reject(obj, record, None, record.error, "")
            return None
        row: list[str | None] = []
        for value, column, convert in zip(record.values or [], targets, converters, strict=True):
            try:
                row.append(convert(value))
            except FieldError as exc:
                self._reject(obj, record, column, (exc.code, exc.reason, exc.position), value or "")
                return None
        return row

    def _send(self, lines: list[str]) -> None:
        data = "".join(lines).encode("utf-8")
        self.loaded_bytes += len(data)
        self.session.backend.send(protocol.copy_data(data))

    def _file_format(self) -> str:
        """STL_LOAD_COMMITS.file_format / SYS_LOAD_HISTORY.file_format: Text (also CSV), JSON, Parquet, ORC."""
        return {"TEXT": "Text", "CSV": "Text", "JSON": "JSON", "PARQUET": "Parquet", "ORC": "ORC"}.get(
            self.spec.format, self.spec.format.lower()
        )

    def _finish(self, outcome: CopyOutcome, status: str) -> None:
        """Commit the session's last-COPY state, load errors, per-file rows and history on the separate
        connection. Each record is written in its own transaction, the session state (what the caller
        reads with pg_last_copy_count()/pg_last_copy_id()) first, so one failing cannot lose the others."""
        pid = self.session.backend_pid or 0
        count = outcome.loaded if outcome.ok else 0
        if self.session.tx_status == b"T":  # in a transaction block: visible to its own snapshot too
            _rows, _error = self.session.internal(
                f"SELECT set_config('redshift_local.last_copy', '{int(count)},{int(self.query_id)}', false)"
            )
        steps = [
            ("session state", lambda: self.recorder.set_session_state(pid, count, self.query_id)),
            ("stl_load_errors", lambda: self.recorder.record_errors(
                self.errors, query_id=self.query_id, table_oid=self.table_oid, session=pid,
                user_id=self.user_id, start=self.start,
            )),
            ("stl_replacements", lambda: self.recorder.record_replacements(
                self.replacements, query_id=self.query_id, table_oid=self.table_oid, session=pid,
                user_id=self.user_id, start=self.start,
            )),
            ("stl_load_commits", lambda: self.recorder.record_commits(
                self.files, query_id=self.query_id, user_id=self.user_id, file_format=self._file_format()
            )),
            ("load history", lambda: self._record_history(outcome, status, pid)),
        ]  # fmt: skip
        for what, step in steps:
            try:
                step()
            except Exception:
                log.exception("could not record the %s of COPY %s", what, self.query_id)

    def _record_history(self, outcome: CopyOutcome, status: str, pid: int) -> None:
        self.recorder.record_history(
            user_id=self.user_id,
            query_id=self.query_id,
            session_id=pid,
            database_name=self.database,
            status=status,
            table_name=self.spec.table_name,
            start_time=self.start,
            end_time=_utcnow(),
            data_source=self.spec.source,
            file_format=self._file_format(),
            loaded_rows=outcome.loaded,
            loaded_bytes=self.loaded_bytes if outcome.ok else 0,
            source_file_count=len(self.objects),
            source_file_bytes=sum(o.size for o in self.objects),
            file_count_scanned=len(self.files),
            file_bytes_scanned=self.bytes_scanned,
            error_count=len(self.errors),
        )
