"""Check a bundle (``dist/``) the way MWAA would load it, in a fresh Python 3.12 virtualenv.

``python -m devstack.verify_bundle --dist dist``:

1. lays ``dist/`` out as MWAA does in a temp dir: ``<tmp>/usr/local/airflow/dags`` (dist/dags) and
   ``<tmp>/usr/local/airflow/plugins`` (plugins.zip extracted);
2. creates a new virtualenv with ``uv venv`` (Python 3.12) and installs ``dist/requirements.txt``
   plus ``apache-airflow==3.3.1`` (MWAA provides Airflow), its ``--constraint`` URL replaced by the
   local copy ``constraints/airflow-3.3.1-python-3.12.txt`` (no GitHub here). uv caches, so a
   second run is quick;
3. in that venv, with ``AIRFLOW_HOME`` in the temp dir and ``PYTHONPATH`` = the plugins folder only
   (nothing from this checkout), fills a ``DagBag`` from the DAG folder and fails on any import error,
   on any DeprecationWarning (incl. AirflowProviderDeprecationWarning, RemovedInAirflow4Warning),
   PendingDeprecationWarning or FutureWarning (incl. Airflow's DeprecatedImportWarning) raised while
   importing the DAG files (and what they import), and when no DAG is found; then loads the plugins
   folder as the scheduler does (every module is imported) and fails on its import errors. Prints
   the DAG ids.

Exit status 0 when the bundle is good. Standard library only (uv does the installing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from deploy_tools import files

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_VERSION = "3.3.1"
PYTHON_VERSION = "3.12"
DEFAULT_CONSTRAINTS = REPO / "constraints" / f"airflow-{AIRFLOW_VERSION}-python-{PYTHON_VERSION}.txt"
#: The constraints URL MWAA must be given (requirements.txt names it; checked, then replaced locally).
EXPECTED_CONSTRAINT_URL = (
    f"https://raw.githubusercontent.com/apache/airflow/constraints-{AIRFLOW_VERSION}/constraints-{PYTHON_VERSION}.txt"
)
_CONSTRAINT_LINE = re.compile(r"^\s*(?:--constraint|-c)(?:\s+|=)\"?([^\"\s]+)\"?\s*$")

#: Environment variables of the calling shell that must not leak into the check.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONSTARTUP")
_LEAKY_PREFIXES = ("AIRFLOW", "REDSHIFT_INGEST_")

# Runs inside the fresh venv. Prints one JSON document on its last stdout line.
PARSE_SCRIPT = r"""
import json, os, re, sys, warnings
warnings.simplefilter("always")
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # older layout
    from airflow.models.dagbag import DagBag
import inspect
from pathlib import Path

import airflow

dags_folder, plugins_folder = sys.argv[1], sys.argv[2]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    kwargs = {"dag_folder": dags_folder}
    params = inspect.signature(DagBag).parameters
    if "include_examples" in params:  # Airflow 2; 3.x only looks at [core] load_examples
        kwargs["include_examples"] = False
    if "bundle_path" in params:
        kwargs["bundle_path"] = Path(dags_folder)
    bag = DagBag(**kwargs)
    # The scheduler / API server also import every module of the plugins folder (MWAA: plugins.zip)
    # looking for AirflowPlugin subclasses: an error there breaks them even if every DAG parses.
    plugin_errors, plugin_names = {}, []
    try:
        from airflow import plugins_manager

        plugins_manager.ensure_plugins_loaded()
        plugin_errors = {str(k): str(v) for k, v in plugins_manager.get_import_errors().items()}
        plugin_names = sorted(str(p.name) for p in plugins_manager._get_plugins()[0])
    except Exception as exc:  # an API change must not hide the DAG results
        plugin_errors = {"<plugins_manager>": f"could not load plugins: {exc!r}"}

# What fails the check. FutureWarning is in: Airflow 3's DeprecatedImportWarning (old import paths
# such as airflow.decorators / airflow.models.DAG) subclasses it, not DeprecationWarning.
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)

_FORMATTED = re.compile(r"^(?P<file>.*?):(?P<line>\d+|None): (?P<type>[\w.]+): (?P<msg>.*)$", re.S)

def _category(name):
    module, _, qualname = name.rpartition(".")
    try:
        import builtins, importlib
        cls = getattr(importlib.import_module(module) if module else builtins, qualname)
        return cls if isinstance(cls, type) and issubclass(cls, Warning) else None
    except Exception:
        return None

warns = []
# DagBag records the warnings of each DAG file's import itself (with their real category) and
# re-emits them as UserWarning; warnings outside those imports reach ``caught`` as they are.
for path, formatted in sorted(bag.captured_warnings.items()):
    for text in formatted:
        m = _FORMATTED.match(text)
        cat = _category(m["type"]) if m else None
        warns.append({
            "dag_file": path,
            "where": f"{m['file']}:{m['line']}" if m else path,
            "category": m["type"] if m else "?",
            "deprecation": bool(cat and issubclass(cat, DEPRECATIONS)),
            "message": m["msg"] if m else text,
        })
for w in caught:
    if w.category is UserWarning and any(
        str(w.message) in text for texts in bag.captured_warnings.values() for text in texts
    ):
        continue  # a re-emission of one already listed above
    # Outside the per-file imports only our own code counts (not Airflow's DagBag machinery).
    ours = os.path.abspath(w.filename).startswith((dags_folder + os.sep, plugins_folder + os.sep))
    warns.append({
        "dag_file": None,
        "where": f"{w.filename}:{w.lineno}",
        "category": f"{w.category.__module__}.{w.category.__name__}".removeprefix("builtins."),
        "deprecation": ours and issubclass(w.category, DEPRECATIONS),
        "message": str(w.message),
    })

print(json.dumps({
    "airflow_version": airflow.__version__,
    "python": sys.version.split()[0],
    "dag_ids": sorted(bag.dag_ids),
    "dag_files": sorted({os.path.relpath(d.fileloc, dags_folder) for d in bag.dags.values()}),
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "plugin_errors": plugin_errors,
    "plugins": plugin_names,
    "warnings": warns,
}))
"""


class VerifyError(Exception):
    """The bundle is not good (or could not be checked); the message says why.

    ``report`` is the parse report when the DAGs were parsed (else ``None``).
    """

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report


def find_python() -> str:
    """Python 3.12 as the Makefile finds it (:func:`deploy_tools.files.find_python`).

    :raises VerifyError: there is none.
    """
    try:
        return files.find_python()
    except files.PythonNotFound as err:
        raise VerifyError(str(err)) from err


def find_uv() -> str:
    """uv: $UV, else next to this interpreter (the project venv), else on PATH."""
    for candidate in (os.environ.get("UV"), str(Path(sys.executable).parent / "uv"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise VerifyError("uv not found: run `make venv` (it installs uv into .venv) or set UV=/path/to/uv")


def local_requirements(requirements: Path, constraints: Path) -> tuple[list[str], str]:
    """Return the requirement lines without the --constraint line, and the URL that line named.

    :raises VerifyError: no --constraint line, several, or one that is not Airflow 3.3.1/Python 3.12's.
    """
    kept, urls = [], []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = _CONSTRAINT_LINE.match(line)
        if match:
            urls.append(match.group(1))
        else:
            kept.append(line)
    if len(urls) != 1:
        raise VerifyError(f"{requirements}: expected one --constraint line, found {len(urls)}")
    if urls[0] != EXPECTED_CONSTRAINT_URL:
        raise VerifyError(f"{requirements}: --constraint {urls[0]} is not {EXPECTED_CONSTRAINT_URL}")
    if not constraints.is_file():
        raise VerifyError(f"local constraints file {constraints} is missing")
    return kept, urls[0]


def lay_out(dist: Path, root: Path) -> tuple[Path, Path]:
    """Put ``dist`` into ``root`` as MWAA does; return (dags folder, plugins folder)."""
    airflow_home = root / "usr" / "local" / "airflow"
    dags, plugins = airflow_home / "dags", airflow_home / "plugins"
    for needed in (dist / "dags", dist / "plugins.zip", dist / "requirements.txt"):
        if not needed.exists():
            raise VerifyError(f"{needed} is missing: run `make bundle` first")
    shutil.copytree(dist / "dags", dags)
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(dist / "plugins.zip") as archive:
        for name in archive.namelist():
            if name.startswith("/") or ".." in Path(name).parts:
                raise VerifyError(f"plugins.zip: unsafe entry {name!r}")
            if name.startswith("plugins/"):
                raise VerifyError("plugins.zip: packages must be at the top level, not under plugins/")
            if "__pycache__" in name or name.endswith(".pyc"):
                raise VerifyError(f"plugins.zip: byte-code must not be shipped ({name})")
        archive.extractall(plugins)
    if not (dags / ".airflowignore").is_file():
        raise VerifyError("dags/.airflowignore is missing: include/ would be scanned as DAG files")
    return dags, plugins


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise VerifyError(f"{' '.join(cmd[:4])} ... failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def make_venv(venv: Path, requirements: list[str], constraints: Path, python: str, uv: str) -> Path:
    """Create ``venv`` with ``requirements`` + Airflow under ``constraints``; return its python."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    req_file = venv.parent / f"{venv.name}.requirements.txt"
    req_file.write_text("\n".join([*requirements, f"apache-airflow=={AIRFLOW_VERSION}", ""]), "utf-8")
    _run([uv, "venv", "--quiet", "--python", python, "--python-preference", "only-system", str(venv)])
    venv_python = venv / "bin" / "python"
    _run([uv, "pip", "install", "--quiet", "--python", str(venv_python), "--constraint", str(constraints),
          "-r", str(req_file)])  # fmt: skip
    return venv_python


def clean_env(airflow_home: Path, dags: Path, plugins: Path) -> dict[str, str]:
    """The environment of the check: the caller's minus anything that would leak this checkout in."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV and not k.startswith(_LEAKY_PREFIXES)}
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home / 'airflow.db'}",
        PYTHONPATH=str(plugins),
        PYTHONDONTWRITEBYTECODE="1",
        # As on MWAA: AWS settings come from the execution role; here nothing reaches AWS at parse time.
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    return env


def parse_dags(venv_python: Path, dags: Path, plugins: Path, work: Path) -> dict:
    """Fill a DagBag in the venv; return the JSON report of ``PARSE_SCRIPT``."""
    script = work / "parse_dags.py"
    script.write_text(PARSE_SCRIPT, encoding="utf-8")
    airflow_home = dags.parent
    result = subprocess.run(
        [str(venv_python), str(script), str(dags), str(plugins)],
        capture_output=True,
        text=True,
        cwd=work,
        env=clean_env(airflow_home, dags, plugins),
        timeout=600,
    )
    last = result.stdout.strip().splitlines()[-1:] if result.stdout.strip() else []
    if result.returncode != 0 or not last:
        raise VerifyError(f"DAG parsing crashed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(last[0])


def judge(report: dict, allow: list[str], allow_empty: bool) -> list[str]:
    """Return the problems in ``report`` (empty when the bundle is good)."""
    problems = [f"import error in {path}:\n{error}" for path, error in sorted(report["import_errors"].items())]
    problems += [f"plugin import error in {path}:\n{error}" for path, error in sorted(report["plugin_errors"].items())]
    for w in report["warnings"]:
        if w["deprecation"] and not any(re.search(pattern, w["message"]) for pattern in allow):
            problems.append(f"{w['category']} at {w['where']}: {w['message']}")
    if not report["dag_ids"] and not allow_empty:
        problems.append("no DAGs found in the bundle")
    return list(dict.fromkeys(problems))  # a warning raised twice at one place is one problem


def verify(
    dist: Path,
    constraints: Path = DEFAULT_CONSTRAINTS,
    *,
    allow: list[str] | None = None,
    allow_empty: bool = False,
    keep: bool = False,
    log=print,
    reuse_venv: Path | None = None,
) -> dict:
    """Verify ``dist``; return the parse report. :raises VerifyError: when the bundle is not good.

    ``reuse_venv`` (tests only): a venv made by ``make_venv`` from the same requirements, used
    instead of a fresh one.
    """
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="verify-bundle-")).resolve()
    try:
        requirements, _ = local_requirements(dist / "requirements.txt", constraints)
        dags, plugins = lay_out(dist, work)
        if reuse_venv is not None:
            venv_python = reuse_venv / "bin" / "python"
        else:
            python, uv = find_python(), find_uv()
            log(f"MWAA tree in {work}; creating a fresh venv ({python}) ...")
            venv_python = make_venv(work / "venv", requirements, constraints, python, uv)
        log(f"venv ready after {time.monotonic() - started:.0f}s; parsing {dags} ...")
        report = parse_dags(venv_python, dags, plugins, work)
        problems = judge(report, allow or [], allow_empty)
        report["seconds"] = round(time.monotonic() - started, 1)
        report["problems"] = problems
        log(f"Airflow {report['airflow_version']} on Python {report['python']}")
        for dag_id in report["dag_ids"]:
            log(f"  DAG {dag_id}")
        notes = [f"  note: {w['category']}: {w['message'][:200]}" for w in report["warnings"] if not w["deprecation"]]
        for note in dict.fromkeys(notes):
            log(note)
        if problems:
            raise VerifyError("\n".join(problems), report)
        return report
    finally:
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="the bundle (default: dist)")
    parser.add_argument("--constraints", type=Path, default=DEFAULT_CONSTRAINTS)
    parser.add_argument(
        "--allow-warning",
        action="append",
        default=[],
        metavar="REGEX",
        help="a deprecation warning whose message matches is reported, not failed (repeatable)",
    )
    parser.add_argument("--allow-empty", action="store_true", help="a bundle without DAGs is not an error")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (tree, venv) for a look")
    args = parser.parse_args(argv)
    try:
        report = verify(
            args.dist,
            args.constraints,
            allow=args.allow_warning,
            allow_empty=args.allow_empty,
            keep=args.keep,
        )
    except VerifyError as exc:
        print(f"verify-bundle: FAILED\n{exc}", file=sys.stderr)
        return 1
    print(f"verify-bundle: OK, {len(report['dag_ids'])} DAGs parsed in {report['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
