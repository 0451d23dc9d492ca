"""Alerts that say what happened to a file, sent with the Slack and SMTP providers' notifiers."""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Any

from redshift_ingest.config import FileType, Settings

log = logging.getLogger(__name__)


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
        return f"[{self.status}] {self.file_type}: s3://{self.bucket}/{self.key}"

    def fields(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order a person reads them."""
        pairs = [
            ("File type", self.file_type),
            ("Status", self.status),
            ("S3 key", f"s3://{self.bucket}/{self.key}"),
            ("Size", f"{self.size_bytes:,} bytes" if self.size_bytes is not None else "unknown"),
            ("Rows loaded", _count(self.rows_loaded)),
            ("Rows rejected", _count(self.rows_rejected)),
            ("DAG / run", f"{self.dag_id} / {self.run_id}"),
        ]
        if self.first_error:
            pairs.append(("First error", self.first_error))
        if self.error_message:
            pairs.append(("Error", self.error_message))
        if self.file_location:
            pairs.append(("File is at", self.file_location))
        if self.error_report:
            pairs.append(("Error report", self.error_report))
        if self.run_url:
            pairs.append(("Airflow run", self.run_url))
        return pairs

    def text(self) -> str:
        """Plain text: one ``label: value`` line per field."""
        return self.subject + "\n" + "\n".join(f"{label}: {value}" for label, value in self.fields())

    def html(self) -> str:
        """An HTML table of the fields (values escaped)."""
        rows = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in self.fields()
        )
        return f"<h3>{html.escape(self.subject)}</h3><table>{rows}</table>"

    def slack_blocks(self) -> list[dict[str, Any]]:
        """Slack Block Kit: a header and one section of fields (Slack caps a field at 2000 chars)."""
        fields = [
            {"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)[:1900]}"} for label, value in self.fields()
        ]
        return [
            {"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}},
            # A section holds at most 10 fields.
            *({"type": "section", "fields": fields[i : i + 10]} for i in range(0, len(fields), 10)),
        ]


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters (api.slack.com "Formatting text for app surfaces").
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def send_alert(alert: FileAlert, file_type: FileType, settings: Settings, context: Any) -> None:
    """Send ``alert`` to the file type's channels. A channel that fails is logged, not raised:
    an alert must never turn a recorded outcome into a task failure.
    """
    if file_type.alerts.slack:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        try:
            SlackWebhookNotifier(
                slack_webhook_conn_id=settings.slack_conn_id,
                text=alert.text(),
                blocks=alert.slack_blocks(),
            ).notify(context)
        except Exception:
            log.exception("Slack alert for %s failed", alert.key)
    if file_type.alerts.email:
        try:
            send_email(alert, list(file_type.alerts.email), settings.smtp_conn_id)
        except Exception:
            log.exception("Email alert for %s failed", alert.key)


def send_email(alert: FileAlert, to: list[str], smtp_conn_id: str) -> None:
    """Send ``alert`` as one email with a plain-text and an HTML part (``multipart/alternative``).

    The connection (host, TLS, login, ``from_email``) is the SMTP provider's ``SmtpHook``; the
    provider's ``SmtpNotifier`` sends HTML only, so the message itself is built with the standard
    library's ``EmailMessage``.
    """
    from email.message import EmailMessage

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        message = EmailMessage()
        message["Subject"] = alert.subject
        message["From"] = hook.from_email or "airflow@localhost"
        message["To"] = ", ".join(to)
        message.set_content(alert.text())
        message.add_alternative(alert.html(), subtype="html")
        hook._smtp_client.send_message(message)  # the hook's connected, authenticated client
