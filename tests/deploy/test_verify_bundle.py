"""``devstack.verify_bundle``: the bundle is parsed in its own Python 3.12 venv, laid out as on MWAA.

One venv (built exactly as ``verify`` builds its fresh one) serves the end-to-end tests here; only
``test_fresh_venv`` makes one of its own, as ``make verify-bundle`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import bundle, verify_bundle

OLD_IMPORT_DAG = """
import pendulum
from airflow.decorators import dag  # deprecated in Airflow 3: airflow.sdk.dag
from airflow.providers.standard.operators.empty import EmptyOperator


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def old_style():
    EmptyOperator(task_id="x")


old_style()
"""

BROKEN_DAG = """
from airflow.sdk import dag
import module_that_is_not_in_requirements
"""


def _quiet(*_args) -> None:
    pass


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    requirements, _ = verify_bundle.local_requirements(
        verify_bundle.REPO / "requirements.txt", verify_bundle.DEFAULT_CONSTRAINTS
    )
    path = tmp_path_factory.mktemp("verify-venv") / "venv"
    verify_bundle.make_venv(
        path,
        requirements,
        verify_bundle.DEFAULT_CONSTRAINTS,
        verify_bundle.find_python(),
        verify_bundle.find_uv(),
    )
    return path


def _verify(project: Path, tmp_path: Path, venv: Path, **kwargs) -> dict:
    dist = tmp_path / "dist"
    bundle.build(dist, repo=project)
    return verify_bundle.verify(dist, log=_quiet, reuse_venv=venv, **kwargs)


def test_fresh_venv(project: Path, tmp_path: Path, capsys):
    """What ``make verify-bundle`` runs: a new venv, Airflow 3.3.1 on 3.12, the DAG found."""
    dist = tmp_path / "dist"
    bundle.build(dist, repo=project)
    assert verify_bundle.main(["--dist", str(dist)]) == 0
    out = capsys.readouterr().out
    assert "Airflow 3.3.1 on Python 3.12." in out
    assert "  DAG throwaway_ok\n" in out
    assert "verify-bundle: OK, 1 DAGs parsed" in out


def test_deprecations_and_import_errors_fail(project: Path, tmp_path: Path, venv: Path, capsys):
    (project / "dags" / "old_style.py").write_text(OLD_IMPORT_DAG)
    (project / "dags" / "broken.py").write_text(BROKEN_DAG)
    with pytest.raises(verify_bundle.VerifyError) as failure:
        _verify(project, tmp_path, venv)
    problems = failure.value.report["problems"]
    assert len(problems) == 2, problems
    assert problems[0].startswith("import error in broken.py:")
    assert "No module named 'module_that_is_not_in_requirements'" in problems[0]
    assert "DeprecatedImportWarning at " in problems[1]
    assert "old_style.py:3" in problems[1]
    # --allow-warning turns a known deprecation into a note; the import error still fails.
    allowed = verify_bundle.judge(failure.value.report, [r"airflow\.decorators\.dag"], allow_empty=False)
    assert allowed == problems[:1]
    assert failure.value.report["dag_ids"] == ["old_style", "throwaway_ok"]


def test_checkout_does_not_leak_in(project: Path, tmp_path: Path, venv: Path, monkeypatch):
    """The repo's plugins/ on PYTHONPATH (the Makefile exports it) must not hide a missing package."""
    (project / "dags" / "uses_repo.py").write_text("from airflow.sdk import dag\nimport redshift_ingest\n")
    monkeypatch.setenv("PYTHONPATH", str(verify_bundle.REPO / "plugins"))
    monkeypatch.setenv("REDSHIFT_INGEST_INCLUDE_DIR", str(verify_bundle.REPO / "include"))
    with pytest.raises(verify_bundle.VerifyError, match="No module named 'redshift_ingest'"):
        _verify(project, tmp_path, venv)


def test_plugin_import_error_fails(project: Path, tmp_path: Path, venv: Path):
    """The scheduler imports every module of the plugins folder not in its .airflowignore."""
    (project / "plugins" / "broken_plugin.py").write_text("import not_installed_anywhere\n")
    with pytest.raises(verify_bundle.VerifyError, match=r"plugin import error in .*broken_plugin\.py") as failure:
        _verify(project, tmp_path, venv)
    # only that module: the plain package next to it is hidden by plugins.zip's .airflowignore
    (path,) = failure.value.report["plugin_errors"]
    assert path.endswith("/broken_plugin.py")


def test_include_is_parsed_without_airflowignore(project: Path, tmp_path: Path, venv: Path):
    """include/sql/trap.py is skipped in the other tests only thanks to dags/.airflowignore."""
    dist = tmp_path / "dist"
    bundle.build(dist, repo=project)
    (dist / "dags" / ".airflowignore").write_text("# emptied\n")
    with pytest.raises(verify_bundle.VerifyError, match=r"import error in include/sql/trap\.py"):
        verify_bundle.verify(dist, log=_quiet, reuse_venv=venv)


def test_empty_bundle_fails_unless_allowed(project: Path, tmp_path: Path, venv: Path):
    (project / "dags" / "throwaway_ok.py").unlink()
    with pytest.raises(verify_bundle.VerifyError, match="no DAGs found") as failure:
        _verify(project, tmp_path, venv)
    assert verify_bundle.judge(failure.value.report, [], allow_empty=True) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "expected one --constraint line, found 0"),
        (
            '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-2.10.3/constraints-3.11.txt"',
            "is not https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt",
        ),
    ],
)
def test_requirements_constraint_is_checked(tmp_path: Path, line: str, message: str):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{line}\npydantic==2.13.4\n")
    with pytest.raises(verify_bundle.VerifyError, match=message):
        verify_bundle.local_requirements(requirements, verify_bundle.DEFAULT_CONSTRAINTS)


def test_repo_requirements_name_the_mwaa_constraint():
    kept, url = verify_bundle.local_requirements(
        verify_bundle.REPO / "requirements.txt", verify_bundle.DEFAULT_CONSTRAINTS
    )
    assert url == verify_bundle.EXPECTED_CONSTRAINT_URL
    assert not any(line.lstrip().startswith("--constraint") for line in kept)


def test_plugins_zip_must_be_flat(project: Path, tmp_path: Path):
    dist = tmp_path / "dist"
    bundle.build(dist, repo=project)
    bundle.write_zip(dist / "plugins.zip", [("plugins/throwaway_pkg/__init__.py", Path(__file__))])
    with pytest.raises(verify_bundle.VerifyError, match="top level"):
        verify_bundle.lay_out(dist, tmp_path / "tree")


def test_repository_bundle_verifies(tmp_path: Path, venv: Path):
    """This repository's own bundle: every DAG imports on MWAA's Airflow with requirements.txt only."""
    dist = tmp_path / "dist"
    bundle.build(dist)
    report = verify_bundle.verify(dist, log=_quiet, reuse_venv=venv)
    assert report["dag_ids"], "no DAGs"
    assert report["problems"] == []
