"""The SAM template of the register_file Lambda: cfn-lint clean, and the settings that matter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "lambdas" / "register_file" / "template.yaml"


def _cfn_lint() -> list[str]:
    """cfn-lint of the project venv (a moto dependency; pinned in requirements-dev.txt)."""
    beside = Path(sys.executable).parent / "cfn-lint"
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if not found:
        pytest.fail("cfn-lint not found: `make venv` installs it (requirements-dev.txt)")
    return [found]


@pytest.fixture(scope="module")
def template() -> dict:
    from cfnlint.decode import decode

    decoded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return decoded


def test_cfn_lint_is_clean():
    result = subprocess.run([*_cfn_lint(), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_function(template: dict):
    function = template["Resources"]["RegisterFileFunction"]
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert function["Type"] == "AWS::Serverless::Function"
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Handler"] == "handler.handler"
    assert props["Architectures"] == ["x86_64"]
    assert (TEMPLATE.parent / props["CodeUri"]).resolve() == REPO / "dist" / "register_file.zip"
    assert 0 < props["Timeout"] <= 900
    assert set(props["Environment"]["Variables"]) >= {
        "REDSHIFT_HOST",
        "REDSHIFT_PORT",
        "REDSHIFT_DATABASE",
        "REDSHIFT_USER",
        "REDSHIFT_SECRET_ARN",
        "REDSHIFT_PASSWORD_PARAMETER",
        "LANDING_PREFIX",
        "REDSHIFT_INGEST_INCLUDE_DIR",
    }
    assert set(props["VpcConfig"]) == {"SubnetIds", "SecurityGroupIds"}
    assert props["DeadLetterQueue"]["Type"] == "SQS"
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "RegisterFileLogGroup"}
    assert template["Resources"]["RegisterFileLogGroup"]["Properties"]["RetentionInDays"]


def test_trigger_is_filtered_by_bucket_and_prefix(template: dict):
    event = template["Resources"]["RegisterFileFunction"]["Properties"]["Events"]["ObjectCreated"]
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "LandingBucketName"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": {"Ref": "LandingPrefix"}}]


def test_policies_are_least_privilege(template: dict):
    statements = []
    for policy in template["Resources"]["RegisterFileFunction"]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            statements.append(statement)
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["ReadRedshiftPasswordSecret"]["Action"] == "secretsmanager:GetSecretValue"
    assert by_sid["ReadRedshiftPasswordSecret"]["Resource"] == {"Ref": "RedshiftSecretArn"}
    assert by_sid["ReadRedshiftPasswordParameter"]["Action"] == "ssm:GetParameter"
    assert by_sid["DecryptRedshiftPassword"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert by_sid["ReadLandingObjects"]["Action"] == "s3:GetObject"
    assert "${LandingPrefix}*" in by_sid["ReadLandingObjects"]["Resource"]["Fn::Sub"]
    assert by_sid["ListLandingPrefix"]["Condition"]["StringLike"]["s3:prefix"] == {"Fn::Sub": "${LandingPrefix}*"}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] != "*", statement
        assert not str(statement["Action"]).endswith(":*"), statement
