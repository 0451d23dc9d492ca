"""Files of a deployment artifact: which files go in, a reproducible zip of them, the Python to
check them with. Standard library only.

Used by ``lambdas/register_file/package.py`` (the Lambda's zip) and ``devstack.bundle`` (the MWAA
bundle's plugins.zip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Never shipped: byte-code, tool caches, editor droppings.
EXCLUDED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".ipynb_checkpoints"})
EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo"})
EXCLUDED_NAMES = frozenset({".DS_Store"})

#: The earliest time a zip entry can carry; any fixed value makes the archive reproducible.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
DIR_MODE = 0o755

#: The Python of MWAA's Airflow 3.3.1 image and of the Lambda runtime.
PYTHON_VERSION = "3.12"


class PythonNotFound(LookupError):
    """No Python ``PYTHON_VERSION`` on this machine; the message says how to point at one."""


def iter_files(root: Path) -> Iterator[Path]:
    """Yield the files under ``root`` that belong in an artifact, sorted, as paths relative to ``root``."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in EXCLUDED_DIRS for part in rel.parts):
            continue
        if path.is_dir() or path.suffix in EXCLUDED_SUFFIXES or path.name in EXCLUDED_NAMES:
            continue
        yield rel


def write_zip(zip_path: Path, entries: Iterable[tuple[str, Path | bytes]]) -> None:
    """Write ``entries`` (archive name, source file or content) to ``zip_path`` reproducibly.

    Entries are sorted; each directory gets an entry of its own (as ``zip -r`` would); timestamps
    and permissions are fixed, so the bytes depend only on the file names and contents.
    """
    files = sorted(entries, key=lambda entry: entry[0])
    dirs: set[str] = set()
    for name, _ in files:
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(zip_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(dirs):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = (0o40000 | DIR_MODE) << 16 | 0x10
            archive.writestr(info, b"")
        for name, source in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = (0o100000 | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = source if isinstance(source, bytes) else source.read_bytes()
            archive.writestr(info, data, compresslevel=9)
    tmp.replace(zip_path)


def find_python() -> str:
    """Python 3.12 as the Makefile finds it: $PYTHON, else pyenv's newest 3.12, else python3.12.

    :raises PythonNotFound: none of them.
    """
    if os.environ.get("PYTHON"):
        return os.environ["PYTHON"]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(
        pyenv_root.glob(f"versions/{PYTHON_VERSION}*/bin/python{PYTHON_VERSION}"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parents[1].name.split(".")],
    )
    if found:
        return str(found[-1])
    on_path = shutil.which(f"python{PYTHON_VERSION}")
    if on_path and subprocess.run([on_path, "-c", "import sys"], capture_output=True).returncode == 0:  # noqa: S603
        return on_path
    raise PythonNotFound(f"Python {PYTHON_VERSION} not found: set PYTHON=/path/to/python{PYTHON_VERSION}")
