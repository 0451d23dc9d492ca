"""What a client session sees of Redshift beyond COPY: isolation, server parameters, error 1023.

* Isolation: Redshift runs every transaction SERIALIZABLE and reports a conflict as error 1023
  (AWS "Serializable isolation"). With ``isolation="serializable"`` (``REDSHIFT_LOCAL_ISOLATION`` /
  ``--isolation``) client sessions get ``default_transaction_isolation=serializable`` in their startup
  packet. The default stays ``read committed``: a serializable snapshot taken before a COPY hides the
  STL/SYS rows the proxy commits on its separate connection, which Redshift shows at once (the session
  functions are covered, see ``catalog``). In every mode PostgreSQL's serialization failures (SQLSTATE
  40001) reach the client as SQLSTATE XX000 with a message starting
  ``1023: Serializable isolation violation on table``.
* Server parameters: Redshift reports ``server_version`` 8.0.2 (its PostgreSQL 8.0.2 lineage),
  ``server_encoding`` UNICODE, ``TimeZone`` UTC and treats backslashes in string literals as escapes
  (``standard_conforming_strings`` off), so drivers take their Redshift code paths (psycopg2 then
  quotes strings as ``E'...'``). The backend session runs with the same settings.
"""

from __future__ import annotations

import os

from redshift_local import protocol

ISOLATION_LEVELS = ("serializable", "repeatable read", "read committed")
DEFAULT_ISOLATION = "read committed"

# ParameterStatus values a Redshift cluster reports where PostgreSQL 17 reports its own.
REPORTED = {
    "server_version": "8.0.2",
    "server_encoding": "UNICODE",
    "standard_conforming_strings": "off",
}
# Startup parameters Redshift drivers (redshift_connector, the JDBC/ODBC drivers) send that PostgreSQL
# would refuse as unknown settings; Redshift reads them, the stand-in drops them.
REDSHIFT_STARTUP_ONLY = {
    "client_protocol_version", "driver_version", "os_version", "driver_discovery_version", "plugin_name",
    "idp_type", "provider_name", "token_type", "identity_namespace", "idc_client_display_name", "compression",
}  # fmt: skip
# Backend settings that make PostgreSQL behave as the reported parameters say.
_BACKEND = {"standard_conforming_strings": "off", "escape_string_warning": "off"}


def isolation_from_env() -> str:
    """``$REDSHIFT_LOCAL_ISOLATION`` (default read committed). Raises ``ValueError`` for an unknown level."""
    level = os.environ.get("REDSHIFT_LOCAL_ISOLATION", DEFAULT_ISOLATION).strip().lower()
    if level not in ISOLATION_LEVELS:
        raise ValueError(f"REDSHIFT_LOCAL_ISOLATION must be one of {', '.join(ISOLATION_LEVELS)}, not {level!r}")
    return level


def startup_params(params: dict[str, str], isolation: str) -> dict[str, str]:
    """The client's startup parameters (without Redshift-only ones) plus the Redshift session
    settings (the client's own win)."""
    params = {k: v for k, v in params.items() if k not in REDSHIFT_STARTUP_ONLY}
    wanted = {**_BACKEND, "default_transaction_isolation": isolation}
    if not any(k.lower() == "timezone" for k in params):
        wanted["TimeZone"] = "UTC"
    return {**params, **{k: v for k, v in wanted.items() if k not in params}}


def parameter_status(payload: bytes) -> bytes:
    """A ParameterStatus payload with Redshift's value where it differs from PostgreSQL's."""
    name = payload.partition(b"\x00")[0]
    value = REPORTED.get(name.decode("utf-8", "replace"))
    if value is None:
        return payload
    return name + b"\x00" + value.encode() + b"\x00"


def error(payload: bytes) -> bytes:
    """An ErrorResponse payload as Redshift would send it: serialization failures become error 1023."""
    fields = protocol.parse_fields(payload)
    if fields.get("C") != "40001":
        return payload
    detail = "; ".join(p for p in (fields.get("M"), fields.get("D")) if p)
    converted = {
        "S": fields.get("S", "ERROR"),
        "V": fields.get("V", "ERROR"),
        "C": "XX000",
        "M": "1023: Serializable isolation violation on table in the current transaction",
        "D": f"Serializable isolation violation (PostgreSQL: {detail})",
    }
    if "H" in fields:
        converted["H"] = fields["H"]
    return protocol.build_fields(converted)
