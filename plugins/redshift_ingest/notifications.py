"""Alerts that say what happened to a file, or to every file of a run, through the providers' notifiers.

Two alerts, one way out (:func:`send_alert`):

- :class:`FileAlert`: one file's outcome (the failure callback, ``DONE_WITH_REJECTS``);
- :class:`BatchAlert`: one alert per run listing several files, one line each (key, status, rows
  loaded / rejected, first error, where the file is).

Slack goes through the Slack provider's ``SlackWebhookNotifier``; email through the SMTP provider's
``SmtpNotifier`` (HTML), or the Amazon provider's ``SesNotifier`` when ``settings.smtp_conn_id``
names an ``aws`` connection (its extra ``from_email`` is the sender). The notifiers' ``notify`` is
called directly, never their templated ``__call__``: alert text holds S3 keys, which are user input
and must not be rendered as Jinja.

S3 keys and error messages are user input, escaped wherever they are shown: Slack mrkdwn (``&``,
``<``, ``>``: api.slack.com, "Formatting text for app surfaces", so ``<!channel>`` in a key pings
nobody), HTML (``html.escape``), an email subject and a log line (control characters such as CR/LF
written as ``\\n``, ``\\x1b``: see :func:`printable`).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redshift_ingest.config import FileType, Settings

log = logging.getLogger(__name__)

SLACK_FIELD_CHARS = 1900  # Slack caps a section field at 2,000 characters
SLACK_MAX_FILE_SECTIONS = 40  # Slack caps a message at 50 blocks
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` on one line: control characters (CR, LF, ESC, U+2028...) written as escapes.

    For an email subject (a header cannot hold CR/LF), a Slack header and log lines (a key with a line
    feed must not split a log line or forge the next one). Other characters, é or 中, stay as they are.
    """
    return _CONTROL.sub(_escape_control, text)


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")


def slack_escape(text: str) -> str:
    """Escape Slack's mrkdwn control characters ``&``, ``<``, ``>`` (api.slack.com, "Formatting text
    for app surfaces"): ``<!channel>`` or ``<@U123>`` in a key is shown, never a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


class Alert(Protocol):
    """What :func:`send_alert` sends: a subject, plain text, HTML and Slack blocks, all escaped."""

    @property
    def subject(self) -> str: ...

    def text(self) -> str: ...

    def html(self) -> str: ...

    def slack_blocks(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class FileAlert:
    """The facts of one file's outcome. Sizes in bytes, counts in rows."""

    file_type: str
    dag_id: str
    run_id: str
    status: str
    bucket: str
    key: str
    size_bytes: int | None = None
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    first_error: str | None = None
    error_message: str | None = None
    file_location: str | None = None
    error_report: str | None = None
    run_url: str | None = None

    @property
    def subject(self) -> str:
        """One line (control characters escaped): ``[status] file type: s3://bucket/key``."""
        return printable(f"[{self.status}] {self.file_type}: s3://{self.bucket}/{self.key}")

    def fields(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order a person reads them (values not escaped)."""
        pairs = [
            ("File type", self.file_type),
            ("Status", self.status),
            ("S3 key", f"s3://{self.bucket}/{self.key}"),
            ("Size", f"{self.size_bytes:,} bytes" if self.size_bytes is not None else "unknown"),
            ("Rows loaded", _count(self.rows_loaded)),
            ("Rows rejected", _count(self.rows_rejected)),
            ("DAG / run", f"{self.dag_id} / {self.run_id}"),
        ]
        optional = (
            ("First error", self.first_error),
            ("Error", self.error_message),
            ("File is at", self.file_location),
            ("Error report", self.error_report),
            ("Airflow run", self.run_url),
        )
        return pairs + [(label, value) for label, value in optional if value]

    def text(self) -> str:
        """Plain text: the subject, then one ``label: value`` line per field (keys on one line)."""
        lines = [f"{label}: {printable(value) if label in _ONE_LINE else value}" for label, value in self.fields()]
        return self.subject + "\n" + "\n".join(lines)

    def html(self) -> str:
        """An HTML table of the fields (values escaped)."""
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in self.fields()
        )
        return f"<h3>{html.escape(self.subject)}</h3><table>{rows}</table>"

    def slack_blocks(self) -> list[dict[str, Any]]:
        """Slack Block Kit: a header and sections of fields (at most 10 a section, 2,000 chars a field)."""
        fields = [
            {"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(value)[:SLACK_FIELD_CHARS]}"}
            for label, value in self.fields()
        ]
        return [
            _slack_header(self.subject),
            *({"type": "section", "fields": fields[i : i + 10]} for i in range(0, len(fields), 10)),
        ]


_ONE_LINE = frozenset({"S3 key", "File is at", "Error report"})


def _slack_header(subject: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}}


@dataclass(frozen=True)
class FileLine:
    """One file of a :class:`BatchAlert`. ``location`` is where the object is now (``s3://...``)."""

    key: str
    status: str
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    first_error: str | None = None
    location: str | None = None

    def describe(self) -> str:
        """``key: STATUS, N loaded, M rejected; first error: ...; at s3://...`` (one line, unescaped)."""
        text = f"{printable(self.key)}: {self.status}, {_count(self.rows_loaded)} loaded, "
        text += f"{_count(self.rows_rejected)} rejected"
        if self.first_error:
            text += f"; first error: {printable(self.first_error)}"
        if self.location:
            text += f"; at {printable(self.location)}"
        return text


@dataclass(frozen=True)
class BatchAlert:
    """One alert for the files of one run: the file type, the run, and one :class:`FileLine` a file.

    :param files: in the order they were loaded; at least one.
    :param bucket: the files' bucket, shown in the subject.
    """

    file_type: str
    dag_id: str
    run_id: str
    files: tuple[FileLine, ...]
    bucket: str = ""
    run_url: str | None = None

    @property
    def tally(self) -> str:
        """``3 files: 1 FAILED, 2 DONE`` (statuses by count, then name)."""
        counts: dict[str, int] = {}
        for line in self.files:
            counts[line.status] = counts.get(line.status, 0) + 1
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}: {parts}"

    @property
    def subject(self) -> str:
        where = f" in s3://{self.bucket}" if self.bucket else ""
        return printable(f"[{self.file_type}] {self.tally}{where} (run {self.run_id})")

    def text(self) -> str:
        """The subject, the DAG and run, then one line per file."""
        lines = [self.subject, f"DAG / run: {self.dag_id} / {self.run_id}"]
        if self.run_url:
            lines.append(f"Airflow run: {self.run_url}")
        return "\n".join(lines + [f"- {line.describe()}" for line in self.files])

    def html(self) -> str:
        """A heading and an HTML table, one row per file (values escaped)."""
        head = "".join(
            f"<th align='left'>{h}</th>"
            for h in ("S3 key", "Status", "Rows loaded", "Rows rejected", "First error", "File is at")
        )
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(value)}</td>"
                for value in (
                    line.key,
                    line.status,
                    _count(line.rows_loaded),
                    _count(line.rows_rejected),
                    line.first_error or "",
                    line.location or "",
                )
            )
            + "</tr>"
            for line in self.files
        )
        run = f"<p>DAG / run: {html.escape(self.dag_id)} / {html.escape(self.run_id)}"
        run += f" — <a href='{html.escape(self.run_url)}'>Airflow run</a></p>" if self.run_url else "</p>"
        return f"<h3>{html.escape(self.subject)}</h3>{run}<table><tr>{head}</tr>{rows}</table>"

    def slack_blocks(self) -> list[dict[str, Any]]:
        """A header, the run, then one section per file (the first 40; a last one counts the rest)."""
        shown = self.files[:SLACK_MAX_FILE_SECTIONS]
        blocks = [
            _slack_header(self.subject),
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(f"{self.dag_id} / {self.run_id}")}},
        ]
        for line in shown:
            text = f"*{slack_escape(printable(line.key))}*\n{slack_escape(line.describe().split(': ', 1)[1])}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
        if len(self.files) > len(shown):
            more = f"and {len(self.files) - len(shown)} more file(s): see the email or the register"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
        return blocks


def send_alert(alert: Alert, file_type: FileType, settings: Settings, context: Any) -> None:
    """Send ``alert`` (a :class:`FileAlert` or :class:`BatchAlert`) to the file type's channels.

    A channel that fails is logged, not raised: an alert must never turn a recorded outcome into a
    task failure.
    """
    if file_type.alerts.slack:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        try:
            SlackWebhookNotifier(
                slack_webhook_conn_id=settings.slack_conn_id,
                text=slack_escape(alert.text()),  # the fallback text is mrkdwn too
                blocks=alert.slack_blocks(),
            ).notify(context)
        except Exception:
            log.exception("Slack alert %r failed", alert.subject)
    if file_type.alerts.email:
        try:
            send_email(alert, list(file_type.alerts.email), settings.smtp_conn_id, context)
        except Exception:
            log.exception("Email alert %r failed", alert.subject)


def send_email(alert: Alert, to: Sequence[str], conn_id: str, context: Any = None) -> None:
    """Send ``alert`` as one HTML email with the provider's notifier.

    ``conn_id`` of type ``smtp``: the SMTP provider's ``SmtpNotifier`` (host, TLS, login and
    ``from_email`` from the connection). Of type ``aws``: the Amazon provider's ``SesNotifier``
    (Amazon SES ``SendRawEmail``), sender from the connection's extra ``from_email``.

    :raises ValueError: an ``aws`` connection without ``from_email`` in its extra.
    :raises Exception: whatever the server answered (``smtplib`` / ``botocore`` errors).
    """
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "aws":
        from airflow.providers.amazon.aws.notifications.ses import SesNotifier

        sender = conn.extra_dejson.get("from_email")
        if not sender:
            raise ValueError(f"connection {conn_id!r} (aws, for Amazon SES) needs 'from_email' in its extra")
        SesNotifier(
            aws_conn_id=conn_id, mail_from=sender, to=list(to), subject=alert.subject, html_content=alert.html()
        ).notify(context)
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(to=list(to), subject=alert.subject, html_content=alert.html(), smtp_conn_id=conn_id).notify(
        context or {}
    )
