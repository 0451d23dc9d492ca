"""Build the MWAA upload bundle, exactly as it goes to the environment's S3 bucket.

``python -m devstack.bundle --out dist`` writes::

    dist/dags/                 the DAG files of dags/ (no caches)
    dist/dags/.airflowignore   dags/.airflowignore, plus ``include/`` if it was missing
    dist/dags/include/         include/ (SQL, DDL, file-type configs): MWAA syncs only dags/,
                               plugins.zip, requirements.txt and a startup script, so include/
                               travels inside dags/ and .airflowignore keeps it out of DAG parsing
    dist/plugins.zip           the contents of plugins/ at its top level (redshift_ingest/...),
                               extracted by MWAA into /usr/local/airflow/plugins (on sys.path),
                               with a .airflowignore that keeps plain packages (no AirflowPlugin)
                               away from the plugin manager (see ``plain_packages``)
    dist/requirements.txt      requirements.txt as is, with its --constraint line

No startup script: nothing has to be set before Airflow starts. ``redshift_ingest.paths`` finds
``dags/include`` from the plugins folder, and Airflow settings (secrets backend) are MWAA
configuration options. The zip is deterministic (sorted entries, fixed timestamps and modes) so an
unchanged plugins/ gives a byte-identical plugins.zip and MWAA need not be updated.

Standard library only. Other files in ``--out`` (e.g. register_file.zip) are left alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deploy_tools.files import ZIP_TIMESTAMP as ZIP_TIMESTAMP  # re-exported: the bundle's zip time
from deploy_tools.files import iter_files, write_zip

REPO = Path(__file__).resolve().parents[1]

#: Patterns (Airflow 3 default ``dag_ignore_file_syntax = glob``) every bundle's .airflowignore holds.
REQUIRED_IGNORE_PATTERNS = ("include/",)


@dataclass(frozen=True)
class Bundle:
    """Where ``build`` put things."""

    dags: Path
    plugins_zip: Path
    requirements: Path


def airflowignore_text(existing: Path | None, required: Iterable[str] = REQUIRED_IGNORE_PATTERNS) -> str:
    """An ``.airflowignore``: the repository's one (if any) plus the ``required`` patterns."""
    lines = existing.read_text(encoding="utf-8").splitlines() if existing and existing.is_file() else []
    present = {line.strip() for line in lines}
    missing = [p for p in required if p not in present and p.rstrip("/") not in present]
    if missing:
        if not lines:
            lines.append("# Written by devstack.bundle (glob syntax, Airflow 3's default).")
        lines.extend(missing)
    return "\n".join(lines) + "\n"


def plain_packages(plugins: Path) -> list[str]:
    """Top-level packages of ``plugins`` that define no Airflow plugin, as ignore patterns.

    Airflow's plugin manager (scheduler, API server, dag processor) imports *every* ``.py`` file of
    the plugins folder as a top-level module (``redshift_ingest/config.py`` as ``config``) looking
    for ``AirflowPlugin`` subclasses: relative imports fail there and show up as plugin import
    errors, and modules get imported twice under wrong names. Our packages are plain libraries
    (importable because the plugins folder is on ``sys.path``), so they are listed in the plugins
    folder's ``.airflowignore``; a package that mentions ``AirflowPlugin`` is left to the loader.
    """
    patterns = []
    for init in sorted(plugins.glob("*/__init__.py")):
        package = init.parent
        sources = (package / rel for rel in iter_files(package) if rel.suffix == ".py")
        if not any("AirflowPlugin" in source.read_text(encoding="utf-8") for source in sources):
            patterns.append(f"{package.name}/")
    return patterns


def _copy_tree(src: Path, dst: Path) -> None:
    for rel in iter_files(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)


def build(out: Path, repo: Path = REPO) -> Bundle:
    """Write the bundle of ``repo`` into ``out`` (replacing a previous bundle there)."""
    dags_src, include_src, plugins_src = repo / "dags", repo / "include", repo / "plugins"
    requirements_src = repo / "requirements.txt"
    for needed in (dags_src, include_src, plugins_src, requirements_src):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: not a checkout of this project?")
    # An empty dags/include/ is the mount point docker-compose leaves behind (it mounts ./include there).
    if (dags_src / "include").exists() and any((dags_src / "include").iterdir()):
        raise FileExistsError(f"{dags_src / 'include'} has files: the bundle puts include/ there itself")
    if not any(plugins_src.glob("*/__init__.py")):
        raise FileNotFoundError(f"no package (dir with __init__.py) under {plugins_src}")

    out.mkdir(parents=True, exist_ok=True)
    dags_out = out / "dags"
    if dags_out.exists():
        shutil.rmtree(dags_out)
    _copy_tree(dags_src, dags_out)
    _copy_tree(include_src, dags_out / "include")
    (dags_out / ".airflowignore").write_text(airflowignore_text(dags_src / ".airflowignore"), "utf-8")

    plugins_zip = out / "plugins.zip"
    entries: list[tuple[str, Path | bytes]] = [
        (rel.as_posix(), plugins_src / rel) for rel in iter_files(plugins_src) if rel != Path(".airflowignore")
    ]
    ignore = plain_packages(plugins_src)
    if ignore or (plugins_src / ".airflowignore").is_file():
        text = airflowignore_text(plugins_src / ".airflowignore", ignore)
        entries.append((".airflowignore", text.encode("utf-8")))
    write_zip(plugins_zip, entries)

    requirements = out / "requirements.txt"
    shutil.copyfile(requirements_src, requirements)
    return Bundle(dags=dags_out, plugins_zip=plugins_zip, requirements=requirements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output directory (default: dist)")
    parser.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        bundle = build(args.out, args.repo)
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    dag_files = sorted(p.name for p in bundle.dags.glob("*.py"))
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        n_entries = len(archive.namelist())
    print(f"{bundle.dags}/  ({len(dag_files)} DAG files: {', '.join(dag_files) or '-'})")
    print(f"{bundle.plugins_zip}  ({n_entries} entries)")
    print(f"{bundle.requirements}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
