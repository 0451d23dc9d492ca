"""``make bench-parse``: how long the dag-processor takes to parse the DAG folder with 10, 200 and 1000 file types.

Airflow 3's dag-processor parses each DAG file in a child forked from its manager: the child imports
the file (building its DAGs) and serializes every DAG it found, then exits; nothing of the file's own
imports survives to the next parse. This benchmark does the same per file of ``dags/``, each in a fresh
process that first imports what the manager already holds (Airflow core, the manager's own module,
its parsing and serialization code, SQLAlchemy, pydantic, Jinja, PyYAML, psycopg2), freezes them out of
the garbage collector's reach (``gc.freeze()``, as the manager does), then times ``BundleDagBag(file)``
plus the serialization of its DAGs (``airflow.dag_processing.processor._serialize_dags``). The
folder's time is the sum over its files.

Imports come from bytecode caches and the configs' data from the parsed-YAML cache
(:mod:`redshift_ingest.yaml_cache`), as on a running dag-processor (its first parse writes them): an
untimed first parse of each size writes them under the workdir (``PYTHONPYCACHEPREFIX``,
``REDSHIFT_INGEST_CACHE_DIR``), not into the sources or the home directory.

The file types: the 10 shipped ones, plus copies under ``landing/b<k>/`` (own prefix, own table) up to
200 and 1000, written to a copy of ``include/`` that ``REDSHIFT_INGEST_INCLUDE_DIR`` points at.
Sizes are alternated (10, 200, 1000, 10, ...) ``--repeat`` times (5); medians are printed, then the last
line::

    parse: 10 types T10 s; 200 types T200 s; 1000 types T1000 s

``--breakdown`` also prints, per size, where the time of ``ingest_file_types.py`` goes (imports of the
package, reading the configs, building the DAGs, serializing them). ``--floor`` prints Airflow's own
cost at each size, without this package: building and serializing that many minimal DAGs of two
plain tasks (the ingest DAGs' shape), without params (as the ingest DAGs), with two params declaring
draft-07 and no type, and with the same params typed.
A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

from devstack.stack import REPO, airflow_home_env

SIZES = (10, 200, 1000)

# What the dag-processor manager has imported before it forks a parsing child (its own module and the
# serialized-DAG model it writes with), and its gc.freeze() before the parsing loop: every script starts so.
MANAGER_STATE = """
import airflow, airflow.sdk, airflow.models, jinja2, pydantic, sqlalchemy, yaml, psycopg2, structlog
import airflow.dag_processing.manager, airflow.models.serialized_dag, gc
gc.freeze()  # as the manager does before it forks a parsing child
"""

PARSER = (
    MANAGER_STATE
    + """
import json, sys, time
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _serialize_dags
from pathlib import Path

path = Path(sys.argv[1])
started = time.perf_counter()
bag = BundleDagBag(dag_folder=str(path), bundle_path=path.parent, bundle_name="dags-folder", load_op_links=False)
serialized, errors = _serialize_dags(bag, structlog.get_logger())
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "dags": len(serialized), "errors": {**bag.import_errors, **errors}}))
"""
)

BREAKDOWN = (
    MANAGER_STATE
    + """
import json, time
from airflow.dag_processing.processor import _serialize_dags
from airflow.dag_processing.dagbag import DagBag
t0 = time.perf_counter()
from redshift_ingest.config import default_report, default_settings
from redshift_ingest.dag_factory import build_dag
t1 = time.perf_counter()
report = default_report()
t2 = time.perf_counter()
dags = [build_dag(ft, default_settings()) for ft in report.file_types]
t3 = time.perf_counter()
bag = DagBag(dag_folder="/dev/null", collect_dags=False)
bag.dags = {d.dag_id: d for d in dags}
_serialize_dags(bag, structlog.get_logger())
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "configs": t2 - t1, "build": t3 - t2, "serialize": t4 - t3}))
"""
)


# Airflow's floor: N minimal two-task DAGs (the ingest DAGs' shape; no project code), built then serialized as above.
FLOOR = (
    MANAGER_STATE
    + """
import json, sys, time
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag
from airflow.dag_processing.processor import _serialize_dags
from airflow.sdk import DAG, BaseOperator, Param

class Step(BaseOperator):
    def execute(self, context):
        return None

def params(variant):
    # "none": as the ingest DAGs (no params); "untyped": two params declaring draft-07 and no type (what
    # the ingest DAGs declared before they had none); "typed": the same with JSON Schema types.
    dialect = {"$schema": "http://json-schema.org/draft-07/schema#"}
    if variant == "none":
        return {}
    if variant == "untyped":
        return {"file_id": Param("", description="d", **dialect), "force": Param(False, description="d", **dialect)}
    return {"file_id": Param(None, type=["null", "string"], title="file_id", description="d", **dialect),
            "force": Param(False, type="boolean", title="force", description="d", **dialect)}

def run(n, variant):
    started = time.perf_counter()
    dags = []
    for i in range(n):
        with DAG(dag_id=f"floor_{i}", schedule="@continuous", start_date=datetime(2026, 1, 1), catchup=False,
                 max_active_runs=1, params=params(variant)) as dag:
            steps = [Step(task_id=f"step_{j}") for j in range(2)]
            for a, b in zip(steps, steps[1:]):
                a >> b
        dags.append(dag)
    bag = DagBag(dag_folder="/dev/null", collect_dags=False)
    bag.dags = {d.dag_id: d for d in dags}
    serialized, errors = _serialize_dags(bag, structlog.get_logger())
    assert len(serialized) == n and not errors, errors
    return time.perf_counter() - started

n = int(sys.argv[1])
run(5, "untyped")  # first-use costs (imports, schema defaults) a long-running processor has already paid
print(json.dumps({variant: run(n, variant) for variant in ("none", "untyped", "typed")}))
"""
)


def make_include(target: Path, size: int) -> Path:
    """A copy of include/ with ``size`` file types: the shipped ones, then copies under ``landing/b<k>/``."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(REPO / "include", target)
    configs = target / "config" / "file_types"
    shipped = [yaml.safe_load(p.read_text()) for p in sorted(configs.glob("*.yaml"))]
    for n in range(size - len(shipped)):
        k, data = n // len(shipped) + 1, shipped[n % len(shipped)]
        schema, table = data["target"]["table"].split(".")
        prefix = f"landing/b{k}/" + data["source"]["prefix"].removeprefix("landing/")
        copy = {
            **data,
            "name": f"{data['name']}_b{k}",
            "source": {**data["source"], "prefix": prefix},
            "target": {**data["target"], "table": f"{schema}.{table}_b{k}"},
        }
        (configs / f"{copy['name']}.yaml").write_text(yaml.safe_dump(copy, sort_keys=False))
    return target


def _env(include: Path, home: Path) -> dict[str, str]:
    # No import timeout: on a busy machine the measurement must not turn into an import error.
    # Bytecode and the parsed YAML are cached (under the workdir, not in the source tree or ~/.cache) as on
    # a running dag-processor, whose first parse writes them: without the bytecode every parse would compile
    # each module it imports again.
    env = {
        **os.environ,
        **airflow_home_env(home),
        "REDSHIFT_INGEST_INCLUDE_DIR": str(include),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "3600",
        "PYTHONPYCACHEPREFIX": str(home.parent / "pycache"),
        "REDSHIFT_INGEST_CACHE_DIR": str(home.parent / "yaml-cache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def parse_folder(include: Path, home: Path) -> tuple[float, int]:
    """Seconds to parse every file of dags/ (one fresh process each), and the DAGs found."""
    total, dags = 0.0, 0
    for path in sorted((REPO / "dags").glob("*.py")):
        out = subprocess.run(
            [sys.executable, "-c", PARSER, str(path)],
            env=_env(include, home),
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["errors"]:
            raise RuntimeError(f"{path.name} with {include}: {result['errors']}")
        total += result["seconds"]
        dags += result["dags"]
    return total, dags


def breakdown(include: Path, home: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", BREAKDOWN],
        env=_env(include, home),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor(size: int, home: Path) -> dict[str, float]:
    """Seconds Airflow takes to build and serialize ``size`` minimal two-task DAGs, per params variant."""
    out = subprocess.run(
        [sys.executable, "-c", FLOOR, str(size)],
        env=_env(REPO / "include", home),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_parse", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO / ".demo" / "bench-parse")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--floor", action="store_true", help="also time Airflow alone: minimal DAGs, per size")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    home = workdir / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    includes = {size: make_include(workdir / f"include-{size}", size) for size in args.sizes}
    times: dict[int, list[float]] = {size: [] for size in args.sizes}
    for size in args.sizes:  # untimed: writes the bytecode caches, as a dag-processor's first parse does
        parse_folder(includes[size], home)
    for round_ in range(args.repeat):
        for size in args.sizes:
            seconds, dags = parse_folder(includes[size], home)
            times[size].append(seconds)
            print(f"round {round_ + 1}: {size} types -> {dags} DAGs in {seconds:.2f} s", flush=True)
    if args.breakdown:
        for size in args.sizes:
            parts = breakdown(includes[size], home)
            print(f"{size} types, ingest_file_types.py: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    if args.floor:
        for size in args.sizes:
            parts = floor(size, home)
            print(
                f"floor, {size} minimal 2-task DAGs (build + serialize): no params (as ours) {parts['none']:.2f} s, "
                f"two untyped params {parts['untyped']:.2f} s, typed (draft-07) {parts['typed']:.2f} s"
            )
    print("parse: " + "; ".join(f"{size} types {statistics.median(times[size]):.2f} s" for size in args.sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
