"""docker-compose.yaml: valid for Compose, and in step with the embedded stack (devstack/stack.py).

The file is checked here with ``docker-compose config`` (``make tools`` installs Debian's docker-compose)
or ``docker compose config`` (the v2 plugin); ``make test-compose`` (tests/deploy/test_compose_stack.py)
starts it for real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
SERVICES = {*AIRFLOW_SERVICES, "postgres", "warehouse-db", "redshift-local", "s3", "mail-receiver", "slack-receiver"}


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def connections(compose) -> dict[str, dict]:
    env = compose["services"]["airflow-scheduler"]["environment"]
    return {
        key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value)
        for key, value in env.items()
        if key.startswith("AIRFLOW_CONN_")
    }


def test_compose_config_is_valid():
    command = _compose_command()
    if command is None:
        pytest.skip(
            "neither docker-compose nor `docker compose` is installed: run `make tools` (as root) "
            "or install the Docker Compose v2 plugin to check docker-compose.yaml"
        )
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in ("AIRFLOW_UID", "LANDING_BUCKET", "POSTGRES_IMAGE")},
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr


def test_services(compose):
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        if name != "airflow-init":
            assert "healthcheck" in service, f"{name} has no healthcheck"


def test_published_ports(compose):
    published = {
        name: {int(str(port).split(":")[0]) for port in service.get("ports", [])}
        for name, service in compose["services"].items()
    }
    assert published["redshift-local"] == {5439}
    assert published["s3"] == {5000}
    assert published["mail-receiver"] == {1025, 8025}
    assert published["slack-receiver"] == {8090, 8091}
    assert published["airflow-api-server"] == {8080}


def test_airflow_services_share_image_env_and_mwaa_layout(compose):
    services = compose["services"]
    first = services[AIRFLOW_SERVICES[0]]
    assert first["build"]["dockerfile"] == "docker/airflow.Dockerfile"
    dockerfile = (REPO / first["build"]["dockerfile"]).read_text()
    # One Dockerfile for both bases: the official image by default, the offline base by build arg.
    assert "ARG AIRFLOW_BASE=apache/airflow:3.3.1-python3.12" in dockerfile
    assert "FROM ${AIRFLOW_BASE}" in dockerfile
    assert first["build"]["args"]["AIRFLOW_BASE"] == "${AIRFLOW_BASE:-apache/airflow:3.3.1-python3.12}"
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["image"] == first["image"]
        assert service["environment"] == first["environment"]
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert set(service["volumes"]) >= {
            "./dags:/opt/airflow/dags",
            "./include:/opt/airflow/dags/include",
            "./plugins:/opt/airflow/plugins",
        }
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES[2:]}
    assert commands == {
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    assert "airflow db migrate" in " ".join(services["airflow-init"]["command"])
    assert services["airflow-api-server"]["command"][-1].endswith("exec airflow api-server")
    for name in AIRFLOW_SERVICES[1:]:
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:17}"
    assert services["warehouse-db"]["image"] == "${POSTGRES_IMAGE:-postgres:17}"


def test_connection_ids_are_those_of_settings(connections):
    settings = yaml.safe_load((REPO / "include" / "config" / "settings.yaml").read_text())
    ids = {settings[key] for key in ("warehouse_conn_id", "aws_conn_id", "slack_conn_id", "smtp_conn_id")}
    assert ids == {"redshift_default", "aws_default", "slack_alerts", "smtp_default"}
    assert set(connections) == ids


def test_connections_point_at_the_compose_services(compose, connections):
    redshift = connections["redshift_default"]
    assert (redshift["conn_type"], redshift["host"], redshift["port"]) == ("postgres", "redshift-local", 5439)
    assert redshift["extra"]["iam_role_arn"].startswith("arn:aws:iam::")
    assert redshift["extra"]["load_errors_source"] == "stl_load_errors"
    assert connections["aws_default"]["extra"]["endpoint_url"] == "http://s3:5000"
    assert connections["slack_alerts"]["host"].startswith("http://slack-receiver:8090/")
    assert (connections["smtp_default"]["host"], connections["smtp_default"]["port"]) == ("mail-receiver", 1025)
    command = compose["services"]["redshift-local"]["command"]
    assert command[0] == "redshift-local"  # the console script of redshift-local/
    assert command[command.index("--port") + 1] == "5439"
    assert "@warehouse-db:5432/" in command[command.index("--postgres-dsn") + 1]
    slack = compose["services"]["slack-receiver"]["command"]
    assert slack[:3] == ["python", "/app/receivers.py", "slack"]
    assert slack[slack.index("--port") + 1] == "8090"
    mail = compose["services"]["mail-receiver"]["command"]
    assert mail[:3] == ["python", "/app/receivers.py", "mail"]
    assert mail[mail.index("--port") + 1] == "1025"


def test_in_step_with_the_embedded_stack(tmp_path, connections):
    """Same connection ids, types and extras as ``EmbeddedStack.connections()`` (services stubbed)."""
    from devstack.stack import EmbeddedStack

    stack = EmbeddedStack(tmp_path)
    stack.redshift = SimpleNamespace(port=5439)
    stack.s3 = SimpleNamespace(endpoint_url="http://s3:5000")
    stack.slack = SimpleNamespace(url="http://slack-receiver:8090")
    stack.smtp = SimpleNamespace(host="mail-receiver", port=1025)
    embedded = {
        key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value) for key, value in stack.connections().items()
    }
    assert set(embedded) == set(connections)
    for conn_id, conn in embedded.items():
        ours = connections[conn_id]
        assert ours["conn_type"] == conn["conn_type"], conn_id
        assert set(conn.get("extra", {})) <= set(ours.get("extra", {})), conn_id
        for key in ("host", "port", "password"):
            if conn_id in ("slack_alerts", "smtp_default", "aws_default") and key in conn:
                assert ours[key] == conn[key], (conn_id, key)


def test_every_service_has_a_health_check_and_a_dependency_order(compose):
    services = compose["services"]
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", ["CMD"])
        # podman's Docker-compatible API re-splits a CMD health check on spaces.
        assert test[0] == "CMD" and not any(" " in arg for arg in test), (name, test)
    for name in ("redshift-local", "s3", "mail-receiver", "slack-receiver"):
        assert services[name]["image"] == "localhost/redshift-ingest-devstack:local", name
    assert services["redshift-local"]["depends_on"]["warehouse-db"] == {"condition": "service_healthy"}
    for name in AIRFLOW_SERVICES[1:]:
        depends = services[name]["depends_on"]
        assert {s for s, c in depends.items() if c == {"condition": "service_healthy"}} == {
            "postgres",
            "redshift-local",
            "s3",
            "mail-receiver",
            "slack-receiver",
        }, name


def test_stack_scripts_are_valid_bash():
    for script in sorted((REPO / "docker").glob("*.sh")):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script.name, result.stderr)
