"""``lambdas/register_file/package.py``: what goes into dist/register_file.zip."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package():
    spec = importlib.util.spec_from_file_location(
        "register_file_package", REPO / "lambdas" / "register_file" / "package.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layout_without_dependencies(package, tmp_path: Path):
    zip_path = package.build(tmp_path, deps=False)
    assert zip_path == tmp_path / "register_file.zip"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert "handler.py" in names
    assert "redshift_ingest/__init__.py" in names
    assert "redshift_ingest/registration.py" in names
    assert "include/config/settings.yaml" in names
    assert "include/config/file_types/" in names
    yamls = [n for n in names if n.startswith("include/config/file_types/") and n.endswith(".yaml")]
    assert yamls, "no file-type config packaged"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # reproducible: the same sources give the same bytes (SAM/CloudFormation then see no change)
    first = zip_path.read_bytes()
    assert package.build(tmp_path, deps=False).read_bytes() == first


def test_with_dependencies_the_handler_imports(package, tmp_path: Path):
    """The real package (wheels for the Lambda runtime from PyPI) imports in an isolated Python 3.12."""
    zip_path = package.build(tmp_path)
    with zipfile.ZipFile(zip_path) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
    assert {"pydantic", "yaml", "psycopg2"} <= top
    assert not top & {"boto3", "botocore"}  # in the runtime
    assert "file types" in package.smoke_test(tmp_path / "register_file")
