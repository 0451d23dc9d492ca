"""Build the deployment package of the ``register_file`` Lambda: ``dist/register_file.zip``.

``python lambdas/register_file/package.py [--out dist] [--no-deps] [--smoke-test]`` assembles in
``dist/register_file/`` (then zips, reproducibly)::

    handler.py                  the Lambda entry point (handler.handler)
    redshift_ingest/            plugins/redshift_ingest, the same code the DAGs run
    include/                    include/ (config/ with settings.yaml and file_types/*.yaml, and the
                                sql/ templates the register uses); the template sets
                                REDSHIFT_INGEST_INCLUDE_DIR=/var/task/include
    <dependencies>              lambdas/register_file/requirements.txt, installed by pip for the
                                Lambda runtime (manylinux2014_x86_64, CPython 3.12, wheels only),
                                under constraints/airflow-3.3.1-python-3.12.txt so the versions are
                                the ones the DAGs use; boto3 comes with the runtime

``--no-deps`` skips the dependencies (fast; for tests of the layout). ``--smoke-test`` then imports
the handler from the package in an isolated Python 3.12 (``-I``, nothing else on sys.path) and loads
the file types and settings, as the Lambda's cold start does.

Deploy the zip with SAM: ``lambdas/register_file/template.yaml`` points ``CodeUri`` at it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make deploy_tools importable
    sys.path.insert(0, str(REPO))

from deploy_tools.files import find_python, iter_files, write_zip  # noqa: E402 - needs the sys.path line above

HERE = Path(__file__).resolve().parent
CONSTRAINTS = REPO / "constraints" / "airflow-3.3.1-python-3.12.txt"
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.12"
#: In the Lambda Python runtime already; never packaged even if something pulls them in.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")

SMOKE_TEST = """
import os, sys
root = sys.argv[1]
sys.path.insert(0, root)
os.environ["REDSHIFT_INGEST_INCLUDE_DIR"] = os.path.join(root, "include")
import handler
from redshift_ingest.config import default_file_types, default_settings
from redshift_ingest.paths import include_dir
assert str(include_dir()).startswith(root), include_dir()
default_settings()
print(f"handler imported; {len(default_file_types())} file types")
"""


def _copy(src: Path, dst: Path) -> None:
    for rel in iter_files(src):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)


def install_dependencies(target: Path, requirements: Path, constraints: Path | None) -> None:
    """pip-install ``requirements`` into ``target`` for the Lambda runtime (Linux x86_64, CPython 3.12)."""
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target), "--platform", PLATFORM, "--implementation", "cp",
        "--python-version", PYTHON_VERSION, "--only-binary=:all:", "-r", str(requirements),
    ]  # fmt: skip
    if constraints is not None:
        cmd += ["--constraint", str(constraints)]
    subprocess.run(cmd, check=True)  # noqa: S603 - fixed argv, no shell
    for name in RUNTIME_PROVIDED:
        for path in target.glob(f"{name}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)


def build(out: Path, *, deps: bool = True, constraints: Path | None = CONSTRAINTS, repo: Path = REPO) -> Path:
    """Assemble ``out/register_file/`` and zip it to ``out/register_file.zip``; return the zip."""
    staging = out / "register_file"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    lambda_dir = repo / "lambdas" / "register_file"
    shutil.copy2(lambda_dir / "handler.py", staging / "handler.py")
    _copy(repo / "plugins" / "redshift_ingest", staging / "redshift_ingest")
    _copy(repo / "include", staging / "include")
    if deps:
        install_dependencies(staging, lambda_dir / "requirements.txt", constraints)
    zip_path = out / "register_file.zip"
    write_zip(zip_path, ((rel.as_posix(), staging / rel) for rel in iter_files(staging)))
    return zip_path


def smoke_test(staging: Path) -> str:
    """Import the handler from ``staging`` in an isolated Python 3.12; return what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REDSHIFT_INGEST_"))}
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [find_python(), "-I", "-c", SMOKE_TEST, str(staging.resolve())],
        capture_output=True,
        text=True,
        env=env,
        cwd=staging,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the packaged handler does not import:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--no-deps", action="store_true", help="leave out the pip dependencies (fast)")
    parser.add_argument("--no-constraints", action="store_true", help="do not apply the Airflow constraints")
    parser.add_argument("--smoke-test", action="store_true", help="import the packaged handler afterwards")
    args = parser.parse_args(argv)
    zip_path = build(args.out, deps=not args.no_deps, constraints=None if args.no_constraints else CONSTRAINTS)
    print(f"{zip_path} ({zip_path.stat().st_size // 1024} KiB)")
    if args.smoke_test:
        try:
            print(smoke_test(args.out / "register_file"))
        except RuntimeError as exc:
            print(f"lambda-package: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
