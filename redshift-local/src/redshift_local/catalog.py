"""The stand-in's own database objects and the separate ("autonomous") connection that writes them.

Created idempotently in every database a client uses:

* ``public.stl_load_errors`` - columns and types of the AWS STL_LOAD_ERRORS doc.
* ``public.sys_load_error_detail`` / ``public.sys_load_history`` - views with the column names of
  the AWS SYS_LOAD_ERROR_DETAIL / SYS_LOAD_HISTORY docs, over ``stl_load_errors`` and
  ``redshift_local.load_history``.
* ``public.stl_load_commits`` - columns of the AWS STL_LOAD_COMMITS doc: one row per S3 object a
  COPY read; ``lines_scanned`` = data records scanned (loaded + rejected; IGNOREHEADER lines and skipped
  blank lines not counted). ``public.sys_load_detail`` - the AWS SYS_LOAD_DETAIL columns over it and
  ``redshift_local.load_file`` (bytes scanned, start/end time, S3 ETag and LastModified per object).
* ``public.stl_replacements`` - AWS STL_REPLACEMENTS: the first 100 lines of a COPY in which
  ACCEPTINVCHARS replaced a character (first such column of the line).
* ``redshift_local.query_id_seq`` - query ids (``query`` in STL_LOAD_ERRORS, ``pg_last_copy_id()``).
* ``redshift_local.session_state`` - the last COPY of each backend session; read by
  ``pg_last_copy_count()``, ``pg_last_copy_id()``, ``pg_last_query_id()``. It is written on the
  separate connection, so like on Redshift the values survive a rollback of the client's transaction.
  Inside a transaction block the proxy also sets ``redshift_local.last_copy`` ("count,id") on the
  client's session: a REPEATABLE READ / SERIALIZABLE snapshot taken before the COPY cannot see the
  separate connection's row; the functions take the newer of the two.
* ``getdate()`` - Redshift's GETDATE: current UTC timestamp without fractional seconds.

Load errors are committed on the separate connection too, so they survive a failed or rolled-back
load, as STL_LOAD_ERRORS does on Redshift.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

import psycopg2
import psycopg2.extensions

log = logging.getLogger(__name__)

BOOTSTRAP_SQL = """
SELECT pg_advisory_xact_lock(5439001);
CREATE SCHEMA IF NOT EXISTS redshift_local;
CREATE SEQUENCE IF NOT EXISTS redshift_local.query_id_seq START 1000;
CREATE TABLE IF NOT EXISTS public.stl_load_errors (
    userid integer,
    slice integer,
    tbl integer,
    starttime timestamp,
    session integer,
    query integer,
    filename character(256),
    line_number bigint,
    colname character(127),
    type character(10),
    col_length character(10),
    position integer,
    raw_line character(1024),
    raw_field_value char(1024),
    err_code integer,
    err_reason character(100)
);
CREATE TABLE IF NOT EXISTS public.stl_replacements (
    userid integer,
    query integer,
    slice integer,
    tbl integer,
    starttime timestamp,
    session integer,
    filename character(256),
    line_number bigint,
    colname character(127),
    raw_line character(1024)
);
CREATE TABLE IF NOT EXISTS public.stl_load_commits (
    userid integer,
    query integer,
    slice integer,
    name character(256),
    filename character(256),
    byte_offset integer,
    lines_scanned integer,
    errors integer,
    curtime timestamp,
    status integer,
    file_format character(16),
    is_partial integer,
    start_offset bigint,
    copy_job_id bigint
);
CREATE TABLE IF NOT EXISTS redshift_local.load_file (
    query integer,
    filename character(256),
    bytes_scanned bigint,
    start_time timestamp,
    end_time timestamp,
    file_etag character(256),
    file_last_modified timestamp,
    PRIMARY KEY (query, filename)
);
CREATE TABLE IF NOT EXISTS redshift_local.load_history (
    user_id integer,
    query_id bigint PRIMARY KEY,
    transaction_id bigint,
    session_id integer,
    database_name text,
    status text,
    table_name text,
    start_time timestamp,
    end_time timestamp,
    data_source text,
    file_format text,
    loaded_rows bigint,
    loaded_bytes bigint,
    source_file_count integer,
    source_file_bytes bigint,
    file_count_scanned integer,
    file_bytes_scanned bigint,
    error_count bigint
);
CREATE TABLE IF NOT EXISTS redshift_local.session_state (
    pid integer PRIMARY KEY,
    backend_start timestamptz,
    last_copy_count bigint,
    last_copy_id bigint,
    last_query_id bigint
);
CREATE OR REPLACE VIEW public.sys_load_error_detail AS
SELECT userid AS user_id, query::bigint AS query_id, NULL::bigint AS transaction_id, session AS session_id,
       current_database()::character(64) AS database_name, tbl AS table_id, starttime AS start_time,
       filename AS file_name, line_number, colname AS column_name, type AS column_type,
       col_length AS column_length, position, err_code AS error_code,
       err_reason::character(512) AS error_message
FROM public.stl_load_errors;
CREATE OR REPLACE VIEW public.sys_load_history AS
SELECT user_id, query_id, transaction_id, session_id, database_name, status, table_name, start_time,
       end_time, (extract(epoch FROM end_time - start_time) * 1000000)::bigint AS duration, data_source,
       file_format, loaded_rows, loaded_bytes, source_file_count, source_file_bytes, file_count_scanned,
       file_bytes_scanned, error_count, 0::bigint AS copy_job_id
FROM redshift_local.load_history;
CREATE OR REPLACE VIEW public.sys_load_detail AS
SELECT c.userid AS user_id, c.query::bigint AS query_id, c.filename AS file_name,
       f.bytes_scanned, c.lines_scanned, c.curtime AS record_time, 1::integer AS splits_scanned,
       f.start_time, f.end_time, f.file_etag, f.file_last_modified
FROM public.stl_load_commits c
LEFT JOIN redshift_local.load_file f ON f.query = c.query AND f.filename = c.filename;
CREATE OR REPLACE FUNCTION redshift_local.session_value(field text) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
    WITH stored AS (
        SELECT s.last_copy_count AS copy_count, s.last_copy_id AS copy_id, s.last_query_id AS query_id
        FROM redshift_local.session_state s
        JOIN pg_stat_activity a ON a.pid = s.pid AND a.backend_start = s.backend_start
        WHERE s.pid = pg_backend_pid()
        UNION ALL
        SELECT split_part(v, ',', 1)::bigint, split_part(v, ',', 2)::bigint, split_part(v, ',', 2)::bigint
        FROM (SELECT nullif(current_setting('redshift_local.last_copy', true), '') AS v) setting
        WHERE v IS NOT NULL
    )
    SELECT CASE field WHEN 'count' THEN copy_count WHEN 'copy' THEN copy_id ELSE query_id END
    FROM stored ORDER BY copy_id DESC LIMIT 1
$fn$;
CREATE OR REPLACE FUNCTION public.pg_last_copy_count() RETURNS bigint
LANGUAGE sql STABLE AS $fn$ SELECT coalesce(redshift_local.session_value('count'), 0) $fn$;
CREATE OR REPLACE FUNCTION public.pg_last_copy_id() RETURNS bigint
LANGUAGE sql STABLE AS $fn$ SELECT coalesce(redshift_local.session_value('copy'), -1) $fn$;
CREATE OR REPLACE FUNCTION public.pg_last_query_id() RETURNS bigint
LANGUAGE sql STABLE AS $fn$ SELECT coalesce(redshift_local.session_value('query'), -1) $fn$;
CREATE OR REPLACE FUNCTION redshift_local.value_too_long(type_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    RAISE EXCEPTION 'value too long for type %', type_name USING ERRCODE = '22001';
END
$fn$;
CREATE OR REPLACE FUNCTION public.getdate() RETURNS timestamp
LANGUAGE sql STABLE AS $fn$ SELECT date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC') $fn$;
GRANT USAGE ON SCHEMA redshift_local TO PUBLIC;
GRANT SELECT ON public.stl_load_errors, public.sys_load_error_detail, public.sys_load_history TO PUBLIC;
GRANT SELECT ON public.stl_load_commits, public.sys_load_detail, public.stl_replacements TO PUBLIC;
GRANT SELECT ON redshift_local.session_state, redshift_local.load_history, redshift_local.load_file TO PUBLIC;
"""


def connect(dsn: str, dbname: str | None = None) -> psycopg2.extensions.connection:
    """An autocommit psycopg2 connection to the backend (``dbname`` overrides the DSN's database)."""
    params = psycopg2.extensions.parse_dsn(dsn)
    if dbname:
        params["dbname"] = dbname
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


class Bootstrapper:
    """Creates the stand-in's objects once per database (thread-safe, idempotent DDL)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, dbname: str | None) -> None:
        """Create the objects in ``dbname`` if this process has not done so yet. Raises psycopg2 errors."""
        key = dbname or ""
        with self._lock:
            if key in self._done:
                return
            conn = connect(self.dsn, dbname)
            try:
                conn.autocommit = False
                with conn.cursor() as cur:
                    cur.execute(BOOTSTRAP_SQL)
                conn.commit()
            finally:
                conn.close()
            self._done.add(key)
            log.info("redshift_local objects ready in database %s", dbname or "(default)")


@dataclass
class LoadErrorRow:
    """One STL_LOAD_ERRORS row (the fields the proxy knows; the rest are filled in by ``Recorder``)."""

    filename: str
    line_number: int
    colname: str
    type: str
    col_length: str
    position: int
    raw_line: str
    raw_field_value: str
    err_code: int
    err_reason: str


@dataclass
class LoadCommitRow:
    """One S3 object a COPY read: an STL_LOAD_COMMITS row plus the SYS_LOAD_DETAIL extras."""

    filename: str
    lines_scanned: int
    rejected: int
    bytes_scanned: int
    start: datetime
    end: datetime
    etag: str
    last_modified: datetime | None


def _period_for_multibyte(text: str, limit: int) -> str:
    """STL_LOAD_ERRORS replaces multibyte characters of raw_line with a period (and so a NUL byte,
    which a PostgreSQL text value cannot hold)."""
    return "".join(c if 0 < ord(c) < 128 else "." for c in text[:limit])


def _storable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with NUL bytes and undecodable bytes made storable."""
    return text[:limit].replace("\x00", ".").encode("utf-8", "replace").decode("utf-8")


class Recorder:
    """Writes load errors, load history and session state on its own autocommit connection."""

    def __init__(self, dsn: str, dbname: str | None) -> None:
        self.dsn = dsn
        self.dbname = dbname
        self._conn: psycopg2.extensions.connection | None = None

    def _cursor(self):
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self.dbname)
        return self._conn.cursor()

    def cursor(self):
        """A cursor on the separate autocommit connection (opened on first use)."""
        return self._cursor()

    @contextlib.contextmanager
    def _transaction(self):
        """A cursor in one transaction on the separate connection: committed on success, else rolled back."""
        cur = self._cursor()
        conn = cur.connection
        conn.autocommit = False
        try:
            with cur:
                yield cur
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True

    def record_errors(
        self,
        rows: list[LoadErrorRow],
        *,
        query_id: int,
        table_oid: int,
        session: int,
        user_id: int,
        start: datetime,
    ) -> None:
        """Insert ``rows`` into stl_load_errors, all in one transaction (all rows or none)."""
        if not rows:
            return
        with self._transaction() as cur:
            cur.executemany(
                "INSERT INTO public.stl_load_errors (userid, slice, tbl, starttime, session, query, filename,"
                " line_number, colname, type, col_length, position, raw_line, raw_field_value, err_code, err_reason)"
                " VALUES (%s, 0, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        user_id,
                        table_oid,
                        start,
                        session,
                        query_id,
                        _storable(row.filename, 256),
                        row.line_number,
                        _storable(row.colname, 127),
                        row.type[:10],
                        row.col_length[:10],
                        row.position,
                        _period_for_multibyte(row.raw_line, 1024),
                        _period_for_multibyte(row.raw_field_value, 1024),
                        row.err_code,
                        _storable(row.err_reason, 100),
                    )
                    for row in rows
                ],
            )

    def record_replacements(
        self, rows: list[LoadErrorRow], *, query_id: int, table_oid: int, session: int, user_id: int, start: datetime
    ) -> None:
        """Insert STL_REPLACEMENTS rows (filename, line_number, colname, raw_line of ``rows``) at once."""
        if not rows:
            return
        with self._transaction() as cur:
            cur.executemany(
                "INSERT INTO public.stl_replacements (userid, query, slice, tbl, starttime, session, filename,"
                " line_number, colname, raw_line) VALUES (%s, %s, 0, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        user_id, query_id, table_oid, start, session, _storable(row.filename, 256), row.line_number,
                        _storable(row.colname, 127), _period_for_multibyte(row.raw_line, 1024),
                    )
                    for row in rows
                ],
            )  # fmt: skip

    def record_commits(self, rows: list[LoadCommitRow], *, query_id: int, user_id: int, file_format: str) -> None:
        """Insert one stl_load_commits row (and its redshift_local.load_file row) per object read,
        all in one transaction on the separate connection."""
        if not rows:
            return
        with self._transaction() as cur:
            cur.executemany(
                "INSERT INTO public.stl_load_commits (userid, query, slice, name, filename, byte_offset,"
                " lines_scanned, errors, curtime, status, file_format, is_partial, start_offset, copy_job_id)"
                " VALUES (%s, %s, 0, '', %s, 0, %s, %s, %s, 1, %s, 0, 0, 0)",
                [(user_id, query_id, r.filename[:256], r.lines_scanned, r.rejected, r.end, file_format) for r in rows],
            )
            cur.executemany(
                "INSERT INTO redshift_local.load_file (query, filename, bytes_scanned, start_time, end_time,"
                " file_etag, file_last_modified) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (query, filename) DO NOTHING",
                [
                    (query_id, r.filename[:256], r.bytes_scanned, r.start, r.end, r.etag[:256], r.last_modified)
                    for r in rows
                ],
            )

    def record_history(self, **values) -> None:
        """Insert one load_history row (the SYS_LOAD_HISTORY columns given as keyword arguments)."""
        columns = ", ".join(values)
        placeholders = ", ".join(["%s"] * len(values))
        with self._cursor() as cur:
            cur.execute(
                f"INSERT INTO redshift_local.load_history ({columns}) VALUES ({placeholders})"
                " ON CONFLICT (query_id) DO NOTHING",
                list(values.values()),
            )

    def set_session_state(self, pid: int, copy_count: int, copy_id: int) -> None:
        """Remember the last COPY of backend ``pid`` for pg_last_copy_count()/pg_last_copy_id()."""
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO redshift_local.session_state (pid, backend_start, last_copy_count, last_copy_id,"
                " last_query_id) SELECT %s, backend_start, %s, %s, %s FROM pg_stat_activity WHERE pid = %s"
                " ON CONFLICT (pid) DO UPDATE SET backend_start = excluded.backend_start,"
                " last_copy_count = excluded.last_copy_count, last_copy_id = excluded.last_copy_id,"
                " last_query_id = excluded.last_query_id",
                (pid, copy_count, copy_id, copy_id, pid),
            )

    def forget_session(self, pid: int) -> None:
        """Drop the state of a finished backend session (best effort)."""
        try:
            with self._cursor() as cur:
                cur.execute("DELETE FROM redshift_local.session_state WHERE pid = %s", (pid,))
        except psycopg2.Error:  # pragma: no cover - backend gone
            log.debug("could not clear session state of pid %s", pid)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def next_query_id(recorder: Recorder) -> int:
    """A new query id from ``redshift_local.query_id_seq`` (taken on the separate connection)."""
    with recorder._cursor() as cur:
        cur.execute("SELECT nextval('redshift_local.query_id_seq')")
        return int(cur.fetchone()[0])
