"""How the host reaches the running docker-compose stack (ports published by docker-compose.yaml).

``compose_state()`` has the shape of ``devstack.airflow_local``'s ``stack.json``, so the browser test
of reruns (``tests/ui``, ``UI_STACK=compose``) and ``test_compose_stack.py`` drive the compose stack
with the same helpers as the embedded one.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "docker" / "stack.sh"
# The long-running services of docker-compose.yaml (airflow-init runs once and exits).
SERVICES = (
    "postgres",
    "warehouse-db",
    "s3",
    "redshift-local",
    "mail-receiver",
    "slack-receiver",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
WAREHOUSE_PASSWORD = "local-only"  # docker-compose.yaml's warehouse-db, as the embedded stack's
REGISTRATION_SECRET = "local/redshift/register-file"


def compose_state() -> dict:
    """What tests need to reach the compose stack from the host: URLs, login, S3 env, warehouse."""
    api = "http://localhost:8080"
    return {
        "ui": api,
        "api": api,
        "username": "admin",
        "password": os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"),
        "landing_bucket": "example-landing-bucket",
        "s3_env": {
            "AWS_ENDPOINT_URL": "http://localhost:5000",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
        "registration_env": {
            "REDSHIFT_HOST": "127.0.0.1",
            "REDSHIFT_PORT": "5439",
            "REDSHIFT_DATABASE": "dev",
            "REDSHIFT_USER": "postgres",
            "REDSHIFT_SECRET_ARN": REGISTRATION_SECRET,
            "REDSHIFT_SSLMODE": "disable",
        },
        "redshift": {
            "host": "127.0.0.1",
            "port": 5439,
            "user": "postgres",
            "password": WAREHOUSE_PASSWORD,
            "dbname": "dev",
        },
        "mail_api": "http://localhost:8025/api/v1/messages",
        "slack_api": "http://localhost:8091/api/v1/messages",
    }


def prepare_registration(state: dict) -> None:
    """The register_file Lambda's secret (the warehouse password) in the stack's Secrets Manager.

    moto keeps it in memory: created again after each start of the ``s3`` service.
    """
    import boto3

    os.environ.update(state["s3_env"])
    secrets = boto3.client("secretsmanager")
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=REGISTRATION_SECRET, SecretString=json.dumps({"password": WAREHOUSE_PASSWORD}))


def service_health() -> dict[str, str]:
    """``{service: "running healthy" | ...}`` from ``docker/stack.sh health`` (the engine's inspect)."""
    out = subprocess.run([str(STACK), "health"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    health = {}
    for line in out.splitlines():
        service, _, status = line.partition(" ")
        health[service] = status
    return health


def mail_messages(state: dict) -> list[dict]:
    """Every message the mail receiver got: ``[{"from", "to", "subject", "text", "html"}]``."""
    with urllib.request.urlopen(state["mail_api"], timeout=10) as response:
        return json.loads(response.read())["messages"]
