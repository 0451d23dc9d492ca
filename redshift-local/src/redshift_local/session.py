"""One client connection: relay PostgreSQL protocol v3 both ways, intercept what Redshift does differently.

Everything is relayed unchanged (startup, authentication, extended protocol, COPY FROM STDIN, ...)
except simple ``Query`` messages holding a ``COPY ... FROM 's3://...'`` or a Redshift-only
``CREATE TABLE``; those are split into statements and run one by one on the client's backend
connection, answering the client as PostgreSQL would (one result per statement, stop at the first
error, one ReadyForQuery with the backend's transaction status).
"""

from __future__ import annotations

import logging
import re
import select
import socket
import struct
from typing import TYPE_CHECKING, Any

from redshift_local import compat, protocol
from redshift_local.catalog import Recorder, next_query_id
from redshift_local.copy_command import CopySyntaxError, UnsupportedCopyOption, parse_copy
from redshift_local.loader import ClientGone, LoadFailure, S3Copy
from redshift_local.protocol import ConnectionClosed, MessageSocket
from redshift_local.sources import s3_client
from redshift_local.sqltext import (
    bind_parameters,
    is_parameterised_s3_copy,
    is_s3_copy,
    is_transaction_control,
    quote_literal,
    redact,
    rewrite_create_table,
    split_statements,
)

if TYPE_CHECKING:
    from redshift_local.server import RedshiftLocal

log = logging.getLogger(__name__)

_MAYBE_INTERESTING = re.compile(r"\bcopy\b.*\bfrom\b\s*[Ee]?'s3://|\bcreate\b.*\btable\b", re.IGNORECASE | re.DOTALL)
_MAYBE_COPY = re.compile(r"\bcopy\b", re.IGNORECASE)
_FLUSH_AT = 64 * 1024
_EXTENDED = (b"P", b"B", b"D", b"C", b"E", b"H", b"S")
# What ends the backend's answer to one extended-protocol message relayed inside a held batch.
_ANSWER_ENDS = {b"P": b"1", b"B": b"2", b"D": b"Tn", b"C": b"3", b"E": b"CIs"}


class ClientSession:
    """Serves one client socket until it disconnects (call ``run()`` in its own thread)."""

    def __init__(self, server: RedshiftLocal, client_sock: socket.socket, peer: Any) -> None:
        self.server = server
        self.peer = peer
        self.client = MessageSocket(client_sock)
        self.backend: MessageSocket | None = None
        self.backend_pid: int | None = None
        self.tx_status = b"I"
        self.pending = 0  # Query/Sync messages forwarded whose ReadyForQuery has not come back
        self.database = ""
        self.recorder: Recorder | None = None
        self._s3_clients: dict[str | None, Any] = {}
        # Extended query protocol: COPY statements/portals the proxy runs itself, and the messages of
        # the current Sync batch that touch them (see ``_extended``).
        self.held_statements: dict[str, tuple[str, list[int]]] = {}
        self.held_portals: dict[str, str] = {}
        self.batch: list[tuple[bytes, bytes]] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve the client; never raises (errors are logged and the connection closed)."""
        try:
            if self._startup():
                self._relay()
        except (ConnectionClosed, ClientGone):
            log.debug("client %s disconnected", self.peer)
        except Exception:
            log.exception("session of client %s failed", self.peer)
        finally:
            self.close()

    def close(self) -> None:
        """Close both sockets and forget the session's state (safe to call twice)."""
        if self.recorder is not None:
            if self.backend_pid:
                self.recorder.forget_session(self.backend_pid)
            self.recorder.close()
            self.recorder = None
        self.client.close()
        if self.backend is not None:
            self.backend.close()

    def _startup(self) -> bool:
        while True:
            packet = self.client.read_startup()
            (code,) = struct.unpack_from("!I", packet, 4)
            if code in (protocol.SSL_REQUEST_CODE, protocol.GSSENC_REQUEST_CODE):
                self.client.send(b"N")  # no TLS / GSS encryption: the client goes on in plain text
                continue
            if code == protocol.CANCEL_REQUEST_CODE:
                with self.server.open_backend() as sock:  # the key is the backend's own: pass it on
                    sock.sendall(packet)
                return False
            break
        params = protocol.parse_startup_params(packet)
        self.database = params.get("database") or params.get("user") or ""
        try:
            self.server.bootstrapper.ensure(self.database)
        except Exception as exc:  # e.g. the database does not exist: the backend will say so
            log.warning("could not prepare database %r: %s", self.database, exc)
        self.backend = MessageSocket(self.server.open_backend())
        self.backend.send(protocol.startup_packet(packet, compat.startup_params(params, self.server.isolation)))
        self.recorder = Recorder(self.server.postgres_dsn, self.database)
        return True

    # -- relaying -----------------------------------------------------------------------------------

    def _relay(self) -> None:
        assert self.backend is not None
        while True:
            out = bytearray()
            while (msg := self.backend.buffered_message()) is not None:
                out += self._from_backend(*msg)
            if out:
                self.client.send(bytes(out))
            while (msg := self.client.buffered_message()) is not None:
                if not self._from_client(*msg):
                    return
            readable, _, _ = select.select([self.client.sock, self.backend.sock], [], [])
            if self.backend.sock in readable:
                self.backend.fill()
            if self.client.sock in readable:
                self.client.fill()

    def _from_backend(self, kind: bytes, payload: bytes) -> bytes:
        if kind == b"Z":
            self.tx_status = payload[:1]
            self.pending = max(0, self.pending - 1)
        elif kind == b"K":
            (self.backend_pid,) = struct.unpack_from("!i", payload, 0)
        elif kind == b"S":
            payload = compat.parameter_status(payload)
        elif kind == b"E":
            payload = compat.error(payload)
        return protocol.message(kind, payload)

    def _from_client(self, kind: bytes, payload: bytes) -> bool:
        assert self.backend is not None
        if kind in _EXTENDED and self._extended(kind, payload):
            return True
        if kind == b"P":
            payload = self._rewrite_parse(payload)
        if kind == b"Q":
            sql = payload[:-1].decode("utf-8", "replace")
            if _MAYBE_INTERESTING.search(sql) and self._intercept(sql):
                return True
            self.pending += 1
        elif kind == b"S":
            self.pending += 1
        self.backend.send(protocol.message(kind, payload))
        return kind != b"X"

    # -- extended query protocol --------------------------------------------------------------------

    def _rewrite_parse(self, payload: bytes) -> bytes:
        """A Parse of a Redshift CREATE TABLE gets the translated text (as a simple Query would)."""
        name, query, oids = protocol.parse_parse(payload)
        self.held_statements.pop(name, None)
        if not _MAYBE_INTERESTING.search(query):
            return payload
        rewritten = rewrite_create_table(query)
        if rewritten == query:
            return payload
        log.info("intercepted Redshift DDL (extended protocol), running as: %s", redact(rewritten))
        return protocol.build_parse(name, rewritten, oids)

    def _holds(self, kind: bytes, payload: bytes) -> bool:
        if kind == b"P":
            _name, query, _oids = protocol.parse_parse(payload)
            return bool(_MAYBE_COPY.search(query)) and is_parameterised_s3_copy(query)
        if kind == b"B":
            portal, statement, _values = protocol.parse_bind(payload)
            if statement in self.held_statements:
                return True
            self.held_portals.pop(portal, None)
            return False
        if kind in (b"D", b"C"):
            target, name = protocol.parse_target(payload)
            return name in (self.held_statements if target == "S" else self.held_portals)
        if kind == b"E":
            return protocol.parse_execute(payload) in self.held_portals
        return False

    def _extended(self, kind: bytes, payload: bytes) -> bool:
        """Hold the Sync batch of a ``COPY ... FROM 's3://...'`` / ``FROM $n`` sent with the extended
        query protocol (Parse/Bind/Describe/Execute/Close ... Sync, as psycopg 3 or redshift_connector
        send it) and answer it when its Sync arrives. False: relay the message as usual."""
        if self.batch is None:
            if kind == b"S" or not self._holds(kind, payload):
                return False
            self.batch = []
        self.batch.append((kind, payload))
        if kind == b"S":
            batch, self.batch = self.batch, None
            self._run_batch(batch)
        return True

    def _run_batch(self, batch: list[tuple[bytes, bytes]]) -> None:
        assert self.backend is not None
        self._drain()
        failed = relayed = False
        for kind, payload in batch[:-1]:
            if failed or kind == b"H":
                continue  # after an error everything up to Sync is skipped, as PostgreSQL does
            if kind == b"P" and self._holds(kind, payload):
                name, query, oids = protocol.parse_parse(payload)
                self.held_statements[name] = (query, oids)
                self.client.send(protocol.message(b"1"))
            elif kind == b"B" and self._holds(kind, payload):
                portal, statement, values = protocol.parse_bind(payload)
                try:
                    self.held_portals[portal] = bind_parameters(self.held_statements[statement][0], values)
                except IndexError:
                    self.client.send(protocol.error_response("bind message supplies too few parameters", "08P01"))
                    failed = True
                    continue
                self.client.send(protocol.message(b"2"))
            elif kind == b"D" and self._holds(kind, payload):
                target, name = protocol.parse_target(payload)
                if target == "S":
                    query, oids = self.held_statements[name]
                    count = query.count("$")
                    oids = (oids + [25] * count)[:count]
                    self.client.send(protocol.parameter_description([oid or 25 for oid in oids]))
                self.client.send(protocol.message(b"n"))  # NoData: COPY returns no rows
            elif kind == b"C" and self._holds(kind, payload):
                target, name = protocol.parse_target(payload)
                (self.held_statements if target == "S" else self.held_portals).pop(name, None)
                self.client.send(protocol.message(b"3"))
            elif kind == b"E" and self._holds(kind, payload):
                sql = self.held_portals[protocol.parse_execute(payload)]
                failed = not (self._copy(sql) if is_s3_copy(sql) else self._run_statement(sql))
            else:  # another statement in the same batch: relay it and its answer
                relayed = True
                self.backend.send(protocol.message(kind, payload) + protocol.message(b"H"))
                failed = not self._relay_answer(_ANSWER_ENDS.get(kind, b""))
        self.held_portals.pop("", None)  # the unnamed portal ends with the batch
        if relayed:
            self.backend.send(protocol.message(b"S"))
            self.pending += 1
            self._drain()
        else:
            self.client.send(protocol.ready_for_query(self.tx_status))

    def _relay_answer(self, ends: bytes) -> bool:
        """Relay backend messages until one whose type is in ``ends`` (True) or an error (False)."""
        assert self.backend is not None
        while True:
            kind, payload = self.backend.read_message()
            self.client.send(self._from_backend(kind, payload))
            if kind == b"E":
                return False
            if kind in ends:
                return True

    # -- interception -------------------------------------------------------------------------------

    def _intercept(self, sql: str) -> bool:
        """Run ``sql`` statement by statement if it needs the proxy; False means "just relay it"."""
        statements = split_statements(sql)
        plan = []
        for statement in statements:
            if is_s3_copy(statement):
                plan.append(("copy", statement))
            else:
                rewritten = rewrite_create_table(statement)
                plan.append(("ddl" if rewritten != statement else "sql", rewritten))
        if all(kind == "sql" for kind, _ in plan):
            return False
        self._drain()
        implicit = len(plan) > 1 and self.tx_status == b"I" and not any(is_transaction_control(s) for s in statements)
        if implicit:
            self.internal("BEGIN")
        ok = True
        for kind, statement in plan:
            if kind == "copy":
                ok = self._copy(statement)
            else:
                if kind == "ddl":
                    log.info("intercepted Redshift DDL, running as: %s", redact(statement))
                ok = self._run_statement(statement)
            if not ok:
                break
        if implicit:
            _rows, error = self.internal("COMMIT" if ok else "ROLLBACK")
            if error is not None and ok:
                self.client.send(protocol.message(b"E", compat.error(error)))
        self.client.send(protocol.ready_for_query(self.tx_status))
        return True

    def _drain(self) -> None:
        """Relay backend output until every earlier Query/Sync has its ReadyForQuery."""
        assert self.backend is not None
        while self.pending > 0:
            self.client.send(self._from_backend(*self.backend.read_message()))

    def _run_statement(self, sql: str) -> bool:
        """Run one statement on the backend, relaying its results (not its ReadyForQuery). True if no error."""
        assert self.backend is not None
        self.backend.send(protocol.query(sql))
        out = bytearray()
        ok = True
        while True:
            kind, payload = self.backend.read_message()
            if kind == b"Z":
                self.tx_status = payload[:1]
                break
            if kind == b"E":
                ok = False
                payload = compat.error(payload)
            out += protocol.message(kind, payload)
            if kind == b"G":  # COPY FROM STDIN inside a split query: the client sends the data
                self.client.send(bytes(out))
                out.clear()
                while True:
                    ckind, cpayload = self.client.read_message()
                    self.backend.send(protocol.message(ckind, cpayload))
                    if ckind in (b"c", b"f"):
                        break
            elif len(out) > _FLUSH_AT:
                self.client.send(bytes(out))
                out.clear()
        if out:
            self.client.send(bytes(out))
        return ok

    def internal(self, sql: str) -> tuple[list[list[str | None]], bytes | None]:
        """Run a helper query on the client's backend session; its output never reaches the client.

        Returns ``(rows as text, ErrorResponse payload or None)``.
        """
        assert self.backend is not None
        self.backend.send(protocol.query(sql))
        rows: list[list[str | None]] = []
        error = None
        while True:
            kind, payload = self.backend.read_message()
            if kind == b"D":
                rows.append(protocol.parse_data_row(payload))
            elif kind == b"E":
                error = payload
            elif kind == b"Z":
                self.tx_status = payload[:1]
                return rows, error

    def wait_ready(self) -> tuple[bytes | None, str | None]:
        """Read backend messages up to ReadyForQuery; returns ``(ErrorResponse payload, command tag)``."""
        assert self.backend is not None
        error, tag = None, None
        while True:
            kind, payload = self.backend.read_message()
            if kind == b"E":
                error = payload
            elif kind == b"C":
                tag = payload[:-1].decode()
            elif kind == b"Z":
                self.tx_status = payload[:1]
                return error, tag

    def client_gone(self) -> bool:
        """True if the client closed its socket (checked without blocking)."""
        try:
            readable, _, _ = select.select([self.client.sock], [], [], 0)
            return bool(readable) and self.client.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _fail(self, text: str, code: str) -> bool:
        """Report an error for the current statement the way PostgreSQL would, transaction state included.

        The error is raised inside the backend session (``DO ... RAISE``) so that a transaction block
        goes into the failed state exactly as for any failed statement; the client gets that error.
        """
        tag = "rl"
        while f"${tag}$" in text:
            tag += "x"
        body = f"BEGIN RAISE EXCEPTION USING MESSAGE = {quote_literal(text)}, ERRCODE = '{code}'; END"
        _rows, error = self.internal(f"DO ${tag}${body}${tag}$")
        payload = protocol.without_fields(error, "WFLR") if error else None
        self.client.send(protocol.message(b"E", payload) if payload else protocol.error_response(text, code))
        return False

    def _s3(self, region: str | None) -> Any:
        if region not in self._s3_clients:
            self._s3_clients[region] = s3_client(region, self.server.s3_endpoint_url)
        return self._s3_clients[region]

    def _copy(self, sql: str) -> bool:
        """Run ``COPY ... FROM 's3://...'`` for the client. True on success (client got ``COPY n``)."""
        log.info("intercepted COPY (backend pid %s): %s", self.backend_pid, redact(" ".join(sql.split())))
        if self.tx_status == b"E":
            return self._run_statement(sql)  # PostgreSQL answers "current transaction is aborted"
        try:
            spec = parse_copy(sql)
        except UnsupportedCopyOption as exc:
            return self._fail(str(exc), "0A000")
        except CopySyntaxError as exc:
            return self._fail(str(exc), "42601")
        if spec.no_op_options:
            log.info("COPY options without effect in the stand-in: %s", ", ".join(spec.no_op_options))
        assert self.recorder is not None
        query_id = next_query_id(self.recorder)
        run = S3Copy(self, spec, self.recorder, self._s3, query_id, self.database)
        try:
            outcome = run.run()
        except LoadFailure as exc:
            return self._fail(str(exc), exc.code)
        log.info(
            "COPY %s into %s: %s row(s) loaded, %s rejected%s",
            query_id,
            spec.table,
            outcome.loaded,
            outcome.rejected,
            "" if outcome.ok else " - failed",
        )
        if outcome.backend_error is not None:
            self.client.send(protocol.message(b"E", compat.error(outcome.backend_error)))
            return False
        if outcome.error_message is not None:
            self.client.send(protocol.error_response(outcome.error_message, "XX000"))
            return False
        out = b"".join(protocol.notice_response(text) for text in outcome.notices)
        self.client.send(out + protocol.command_complete(f"COPY {outcome.loaded}"))
        return True
