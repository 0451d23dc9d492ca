"""PostgreSQL frontend/backend protocol v3 framing: just enough to relay and to speak for the proxy.

Reference: PostgreSQL documentation, chapter "Frontend/Backend Protocol" (message formats).
"""

from __future__ import annotations

import contextlib
import socket
import struct

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102

_RECV_SIZE = 256 * 1024


class ConnectionClosed(Exception):
    """The peer closed the socket (or it broke) before a whole message arrived."""


class MessageSocket:
    """A socket with a receive buffer that yields whole protocol messages.

    ``read_message()`` blocks until one message is complete; ``buffered_message()`` only looks at
    what has already been received, so it can be used after ``select()`` said the socket is readable.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def fileno(self) -> int:
        return self.sock.fileno()

    def fill(self) -> None:
        """Receive once (blocking). Raises ``ConnectionClosed`` on EOF or socket error."""
        try:
            chunk = self.sock.recv(_RECV_SIZE)
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from exc
        if not chunk:
            raise ConnectionClosed("peer closed the connection")
        self._buf += chunk

    def buffered_message(self) -> tuple[bytes, bytes] | None:
        """Pop one complete ``(type byte, payload)`` message from the buffer, or None."""
        if len(self._buf) < 5:
            return None
        (length,) = struct.unpack_from("!I", self._buf, 1)
        if len(self._buf) < 1 + length:
            return None
        kind = bytes(self._buf[0:1])
        payload = bytes(self._buf[5 : 1 + length])
        del self._buf[: 1 + length]
        return kind, payload

    def read_message(self) -> tuple[bytes, bytes]:
        """Block until a whole typed message is available and return ``(type byte, payload)``."""
        while True:
            message = self.buffered_message()
            if message is not None:
                return message
            self.fill()

    def read_startup(self) -> bytes:
        """Read one untyped startup-phase packet (length word included) and return it whole."""
        while len(self._buf) < 4 or len(self._buf) < struct.unpack_from("!I", self._buf, 0)[0]:
            self.fill()
        (length,) = struct.unpack_from("!I", self._buf, 0)
        packet = bytes(self._buf[:length])
        del self._buf[:length]
        return packet

    def has_buffered(self) -> bool:
        return bool(self._buf)

    def send(self, data: bytes) -> None:
        """Send all of ``data``. Raises ``ConnectionClosed`` when the peer is gone."""
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def message(kind: bytes, payload: bytes = b"") -> bytes:
    """Frame one typed message: type byte, int32 length (itself included), payload."""
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _cstr(text: str) -> bytes:
    return text.encode("utf-8") + b"\x00"


def query(sql: str) -> bytes:
    """A simple-protocol ``Query`` message."""
    return message(b"Q", _cstr(sql))


def command_complete(tag: str) -> bytes:
    return message(b"C", _cstr(tag))


def ready_for_query(status: bytes) -> bytes:
    return message(b"Z", status)


def copy_data(data: bytes) -> bytes:
    return message(b"d", data)


def copy_done() -> bytes:
    return message(b"c")


def copy_fail(reason: str) -> bytes:
    return message(b"f", _cstr(reason))


def _fields(severity: str, code: str, text: str, detail: str | None, hint: str | None) -> bytes:
    parts = [b"S" + _cstr(severity), b"V" + _cstr(severity), b"C" + _cstr(code), b"M" + _cstr(text)]
    if detail:
        parts.append(b"D" + _cstr(detail))
    if hint:
        parts.append(b"H" + _cstr(hint))
    return b"".join(parts) + b"\x00"


def error_response(text: str, code: str = "XX000", detail: str | None = None, hint: str | None = None) -> bytes:
    """An ``ErrorResponse`` (severity ERROR) with SQLSTATE ``code``."""
    return message(b"E", _fields("ERROR", code, text, detail, hint))


def notice_response(text: str, severity: str = "INFO", code: str = "00000") -> bytes:
    """A ``NoticeResponse``; Redshift reports COPY summaries as INFO notices."""
    return message(b"N", _fields(severity, code, text, None, None))


def parse_fields(payload: bytes) -> dict[str, str]:
    """Decode the fields of an ErrorResponse/NoticeResponse payload into ``{code letter: text}``."""
    fields: dict[str, str] = {}
    for part in payload.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def without_fields(payload: bytes, letters: str) -> bytes:
    """Return an ErrorResponse payload with the given field letters removed (e.g. ``W`` context)."""
    kept = [part for part in payload.split(b"\x00") if part and chr(part[0]) not in letters]
    return b"".join(p + b"\x00" for p in kept) + b"\x00"


def parse_startup_params(packet: bytes) -> dict[str, str]:
    """Parameters (``user``, ``database``, ...) of a StartupMessage packet (length word included)."""
    items = packet[8:].split(b"\x00")
    params: dict[str, str] = {}
    for key, value in zip(items[0::2], items[1::2], strict=False):
        if key:
            params[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return params


def startup_packet(packet: bytes, params: dict[str, str]) -> bytes:
    """A StartupMessage with the protocol version of ``packet`` and the parameters ``params``."""
    body = b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\x00"
    return struct.pack("!I", 8 + len(body)) + packet[4:8] + body


def build_fields(fields: dict[str, str]) -> bytes:
    """An ErrorResponse/NoticeResponse payload from ``{code letter: text}`` (inverse of ``parse_fields``)."""
    return b"".join(letter.encode() + _cstr(text) for letter, text in fields.items()) + b"\x00"


def _cstring_at(payload: bytes, offset: int) -> tuple[str, int]:
    end = payload.index(b"\x00", offset)
    return payload[offset:end].decode("utf-8", "replace"), end + 1


def parse_parse(payload: bytes) -> tuple[str, str, list[int]]:
    """A Parse message: ``(statement name, query, parameter type OIDs)``."""
    name, offset = _cstring_at(payload, 0)
    query, offset = _cstring_at(payload, offset)
    (count,) = struct.unpack_from("!H", payload, offset)
    oids = list(struct.unpack_from(f"!{count}I", payload, offset + 2))
    return name, query, oids


def build_parse(name: str, query: str, oids: list[int]) -> bytes:
    """The payload of a Parse message (inverse of ``parse_parse``)."""
    return _cstr(name) + _cstr(query) + struct.pack(f"!H{len(oids)}I", len(oids), *oids)


def parse_bind(payload: bytes) -> tuple[str, str, list[str | None]]:
    """A Bind message: ``(portal, statement, parameter values as text)``; binary values are decoded as
    UTF-8 (COPY's parameters are strings)."""
    portal, offset = _cstring_at(payload, 0)
    statement, offset = _cstring_at(payload, offset)
    (nformats,) = struct.unpack_from("!H", payload, offset)
    offset += 2 + 2 * nformats
    return portal, statement, _values(payload, offset, "replace")


def parse_target(payload: bytes) -> tuple[str, str]:
    """A Describe/Close message: ``("S" or "P", statement or portal name)``."""
    return payload[:1].decode(), _cstring_at(payload, 1)[0]


def parse_execute(payload: bytes) -> str:
    """An Execute message: the portal name."""
    return _cstring_at(payload, 0)[0]


def parameter_description(oids: list[int]) -> bytes:
    return message(b"t", struct.pack(f"!H{len(oids)}I", len(oids), *oids))


def parse_data_row(payload: bytes) -> list[str | None]:
    """Decode a ``DataRow`` payload (text format) into Python strings / None."""
    return _values(payload, 0, "strict")


def _values(payload: bytes, offset: int, errors: str) -> list[str | None]:
    """A count (int16) then that many length-prefixed (int32, -1 = NULL) values, decoded as UTF-8."""
    (count,) = struct.unpack_from("!H", payload, offset)
    offset += 2
    values: list[str | None] = []
    for _ in range(count):
        (length,) = struct.unpack_from("!i", payload, offset)
        offset += 4
        if length < 0:
            values.append(None)
        else:
            values.append(payload[offset : offset + length].decode("utf-8", errors))
            offset += length
    return values
