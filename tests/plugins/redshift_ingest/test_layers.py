"""One home per concept, dependencies only downward: checked on the source, no service needed.

- SQL lives in ``include/sql`` (rendered by :mod:`redshift_ingest.sql`): no SQL statement in a
  Python string of the product (``plugins/``, ``dags/``, ``lambdas/``);
- the DAG builders (``dag_factory``, ``maintenance``) are the top: nothing in the package imports
  them, and only they import the operators and sensors;
- the product and the deploy code (``lambdas/``, ``deploy_tools/``) never import the dev stack.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "plugins" / "redshift_ingest"
PRODUCT = [*sorted((REPO / "plugins").rglob("*.py")), *sorted((REPO / "dags").rglob("*.py"))]
DEPLOY = [*sorted((REPO / "lambdas").rglob("*.py")), *sorted((REPO / "deploy_tools").rglob("*.py"))]
# A statement's shape, upper case as the templates write it (log and error messages say "COPY of ...").
SQL_STATEMENT = re.compile(
    r"\b(SELECT\s+\S.*\s+FROM\s|INSERT\s+INTO\s|UPDATE\s+\S+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(TABLE|SCHEMA|"
    r"GROUP|USER|TEMP)|DROP\s+TABLE|ALTER\s+TABLE|GRANT\s+\w+\s+ON|COPY\s+\S+\s+(\(|FROM)|LOCK\s+(TABLE\s+)?\")",
    re.S,
)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO / "plugins").with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as ``a.b`` and ``a.b.c``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of ``path`` that are not docstrings, with their line."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize("path", [*PRODUCT, *DEPLOY], ids=lambda p: str(p.relative_to(REPO)))
def test_no_sql_statement_outside_include_sql(path: Path):
    found = [f"line {line}: {text[:80]!r}" for line, text in strings(path) if SQL_STATEMENT.search(text)]
    assert not found, f"SQL belongs in include/sql (rendered by redshift_ingest.sql.render): {found}"


def test_the_pattern_finds_statements():
    assert SQL_STATEMENT.search("SELECT 1 FROM pg_tables WHERE schemaname = %s")
    assert SQL_STATEMENT.search('COPY "tickit"."venue"\nFROM %(copy_from)s')
    assert not SQL_STATEMENT.search("COPY of s3://b/k into tickit.venue failed: ...")


def test_dependencies_point_down():
    top = ("redshift_ingest.dag_factory", "redshift_ingest.maintenance")
    runners = ("redshift_ingest.operators", "redshift_ingest.sensors")
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for imported in imports(path):
            if imported.startswith(top) and not name.startswith(top):
                wrong.append(f"{name} imports {imported} (a DAG builder)")
            if imported.startswith(runners) and not name.startswith((*top, *runners)):
                wrong.append(f"{name} imports {imported} (an operator or sensor: move what it needs lower)")
    assert not wrong, wrong


@pytest.mark.parametrize("path", [*PRODUCT, *DEPLOY], ids=lambda p: str(p.relative_to(REPO)))
def test_product_and_deploy_code_do_not_import_the_dev_stack(path: Path):
    assert not [m for m in imports(path) if m == "devstack" or m.startswith("devstack.")]


def test_the_package_tests_mirror_the_package_tree():
    """``tests/plugins/redshift_ingest/<sub>/`` holds the tests of ``plugins/redshift_ingest/<sub>/``: a
    test folder without its package, or a subpackage with logic but no test folder, is a defect."""
    tests = REPO / "tests" / "plugins" / "redshift_ingest"
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    test_folders = {p.name for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert test_folders <= subpackages, f"test folders with no package: {sorted(test_folders - subpackages)}"
    # hooks/ and sensors/ are thin (a connection, a sensor built from the trigger): their behaviour is
    # tested where it runs (tests/plugins/redshift_ingest/test_grants.py, tests/dags, tests/e2e).
    untested = subpackages - test_folders - {"hooks", "sensors"}
    assert not untested, f"subpackages without a test folder: {sorted(untested)}"
    for folder in test_folders:
        assert list((tests / folder).glob("test_*.py")), folder
