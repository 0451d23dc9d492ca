"""The parsed YAML of the config files, kept between DAG parses as JSON, keyed by each file's content.

The dag-processor parses the DAG folder again and again, each time in a fresh process, and two of its
DAG files read every file-type config. Parsing YAML is most of that reading (PyYAML builds each value
in Python, even with libyaml); loading the same data back from JSON is about thirty times cheaper. So
the data parsed from a YAML file is kept in one JSON file, under the SHA-256 of the YAML file's bytes:
a changed file has another digest, so its entry is never stale and there is nothing to invalidate.
Only the parsing is cached: every value still goes through the same validation (``config.py``).

Where: ``$REDSHIFT_INGEST_CACHE_DIR``, else ``$XDG_CACHE_HOME/redshift_ingest``, else
``~/.cache/redshift_ingest`` (on MWAA ``/usr/local/airflow/.cache/redshift_ingest``); an empty
``REDSHIFT_INGEST_CACHE_DIR`` turns the cache off. The directory is created private (mode 0700), and
one that is not owned by this user or that others can write to is not used: whoever can write the cache
decides what the configs say. The cache is only an accelerator: an unreadable, corrupt, foreign or
unwritable cache is ignored (the YAML is parsed as without it), and a data value JSON cannot carry
exactly (a YAML date, a non-string key) is not cached. Concurrent writers (the dag-processor parses
two files at once) each replace the file atomically; the loser's new entries are parsed again next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ENV_VAR = "REDSHIFT_INGEST_CACHE_DIR"
FILE_NAME = "parsed-yaml.json"
#: Entries kept beyond those used by the last parse, so that a few include/ trees can share one cache.
MAX_ENTRIES = 20_000
# What the cached data depends on besides the YAML bytes: the cache's format and PyYAML's version.
_FORMAT = f"1/pyyaml-{yaml.__version__}"


def cache_dir() -> Path | None:
    """The cache's directory, or None when ``$REDSHIFT_INGEST_CACHE_DIR`` is set empty (cache off) or
    there is no home directory."""
    configured = os.environ.get(ENV_VAR)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory to be found
            return None
    return Path(base) / "redshift_ingest"


def _private_dir(directory: Path) -> bool:
    """Create ``directory`` (0700) if missing; True when it is ours and no one else can write to it."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _json_exact(data: Any) -> bool:
    """True when ``data`` comes back from JSON as it is (types included): str, int, float, bool, None,
    lists and string-keyed dicts of them. A YAML date, a set or an integer key would not."""
    if data is None or isinstance(data, str | bool | int):
        return True
    if isinstance(data, float):
        return data == data and data not in (float("inf"), float("-inf"))  # NaN and inf are not JSON
    if isinstance(data, list):
        return all(_json_exact(item) for item in data)
    if isinstance(data, dict):
        return all(isinstance(key, str) and _json_exact(value) for key, value in data.items())
    return False


class ParsedYamlCache:
    """Parsed YAML data by SHA-256 of the YAML bytes, read once from ``directory`` and written back by
    :meth:`save` when a parse added entries.

    :param directory: where the cache file lives; None: no cache (every lookup parses).
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory if directory is not None and _private_dir(directory) else None
        self._entries: dict[str, Any] | None = None
        self._used: set[str] = set()
        self._added = False

    @property
    def path(self) -> Path | None:
        """The cache file, or None when the cache is off or its directory unusable."""
        return None if self.directory is None else self.directory / FILE_NAME

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                try:
                    stored = json.loads(self.path.read_bytes())
                except (OSError, ValueError):
                    stored = None
                if (
                    isinstance(stored, dict)
                    and stored.get("format") == _FORMAT
                    and isinstance(stored.get("entries"), dict)
                ):
                    self._entries = stored["entries"]
        return self._entries

    def parse(self, raw: bytes, parse: Callable[[bytes], Any]) -> Any:
        """The data of the YAML document ``raw``: from the cache, else ``parse(raw)`` (then cached).

        :param raw: the YAML file's bytes.
        :param parse: the YAML parser; its exceptions propagate and nothing is cached for ``raw``.
        :returns: what ``parse(raw)`` returns (a fresh object: callers may not share mutable data).
        """
        entries = self._load()
        digest = hashlib.sha256(raw).hexdigest()
        self._used.add(digest)
        if digest in entries:
            try:
                return json.loads(entries[digest])
            except (TypeError, ValueError):  # an entry damaged on disk: parse, and store it again
                pass
        data = parse(raw)
        if self.directory is not None and _json_exact(data):
            entries[digest] = json.dumps(data, separators=(",", ":"))
            self._added = True
        return data

    def save(self) -> None:
        """Write the cache back when entries were added (atomically; errors are ignored: it is a cache)."""
        if not self._added or self.path is None or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = {digest: entries[digest] for digest in self._used if digest in entries}
        temporary: str | None = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".parsed-yaml-", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"format": _FORMAT, "entries": entries}, out, separators=(",", ":"))
            os.replace(temporary, self.path)
            temporary = None
            self._added = False
        except OSError:
            pass
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
