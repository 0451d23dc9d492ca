"""Check the file-type YAMLs as the DAG factory will read them (pre-commit hook and ``make lint``).

Usage: ``python -m devstack.check_file_types [DIRECTORY ...]`` (default: ``include/config/file_types``).
Each directory is loaded with :func:`redshift_ingest.config.load_file_types` against the deployed
settings (``include/config/settings.yaml``), so a refused file type fails here before it is deployed.
Exit status 0 when every file is accepted, 1 otherwise; each refusal names its file and why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from redshift_ingest import paths
from redshift_ingest.config import ConfigError, default_settings, load_file_types


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="*", type=Path, help="folders of file-type YAMLs")
    args = parser.parse_args(argv)
    directories = args.directories or [paths.file_types_dir()]
    settings = default_settings()
    failed = False
    for directory in directories:
        try:
            file_types = load_file_types(directory, settings)
        except ConfigError as err:
            print(f"{directory}: refused\n{err}", file=sys.stderr)
            failed = True
        else:
            print(f"{directory}: {len(file_types)} file types accepted ({', '.join(ft.name for ft in file_types)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
