"""Where the package finds ``include/`` (SQL templates, DDL, file-type configs).

Locally ``include/`` sits at the repository root beside ``dags/`` and ``plugins/``. On MWAA only
``dags/``, ``plugins.zip`` and ``requirements.txt`` are synced, so the bundle ships it as
``dags/include/`` (kept out of DAG parsing by ``dags/.airflowignore``). Found relative to this file or
to the DAG folder, never to the working directory; ``$REDSHIFT_INGEST_INCLUDE_DIR`` overrides.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

ENV_VAR = "REDSHIFT_INGEST_INCLUDE_DIR"


@cache
def include_dir() -> Path:
    """Return the ``include/`` directory.

    :raises FileNotFoundError: no candidate holds ``sql/`` and ``config/``; the message lists where
        it looked.
    """
    candidates: list[Path] = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    here = Path(__file__).resolve()
    # <repo>/plugins/redshift_ingest/paths.py -> <repo>/include
    candidates.append(here.parents[2] / "include")
    # MWAA: /usr/local/airflow/plugins(.zip)/redshift_ingest -> /usr/local/airflow/dags/include
    candidates.append(here.parents[2] / "dags" / "include")
    dags_folder = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if dags_folder:
        candidates.append(Path(dags_folder) / "include")
    candidates.append(Path(os.environ.get("AIRFLOW_HOME", "/usr/local/airflow")) / "dags" / "include")
    for candidate in candidates:
        if (candidate / "sql").is_dir() and (candidate / "config").is_dir():
            return candidate
    raise FileNotFoundError(
        "include/ (with sql/ and config/) not found; looked in: "
        + ", ".join(str(c) for c in candidates)
        + f". Set {ENV_VAR} to its path."
    )


def sql_dir() -> Path:
    """The search path of every SQL template (``include/sql``)."""
    return include_dir() / "sql"


def file_types_dir() -> Path:
    """The directory of the file-type configs (``include/config/file_types``)."""
    return include_dir() / "config" / "file_types"


# --- Keys derived from a landed key (archive, quarantine, error reports, staging) -----------------

#: S3: "The object key name is a sequence of Unicode characters whose UTF-8 encoding is at most
#: 1,024 bytes long" (AWS, "Naming Amazon S3 objects"). The register's key columns are
#: ``VARCHAR(1024)``, which Redshift counts in bytes too.
MAX_KEY_BYTES = 1024
#: ``s3://`` + the longest bucket name (63) + ``/``: room a key needs when stored as a URL
#: (``staged_from`` holds the URL COPY reads, ``VARCHAR(1024)``).
URL_ROOM = len("s3://") + 63 + len("/")
#: Room left for a staged object's own name under its staging folder (see :func:`staged_key_root`).
STAGED_NAME_BYTES = 128
ERROR_REPORT_SUFFIX = ".load_errors.csv"
_HASH_CHARS = 16
_MIN_SHORT_BYTES = _HASH_CHARS + 2 + 8  # "~" + hash + "~" and a few bytes of the name around it


class KeyTooLong(ValueError):
    """No key derived from a landed key can fit S3's 1,024-byte limit (the message says which and why)."""


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _head(text: str, max_bytes: int) -> str:
    # Cut on a UTF-8 character boundary: a character split by the cut is dropped whole.
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def _tail(text: str, max_bytes: int) -> str:
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8")[-max_bytes:].decode("utf-8", "ignore")


def shorten(text: str, max_bytes: int) -> str:
    """``text`` if its UTF-8 encoding fits ``max_bytes``, else a deterministic shorter form that does.

    The short form is ``<head>~<hash>~<tail>``: ``hash`` is the first 16 hex digits of the SHA-256 of
    the whole ``text`` (so two texts that differ anywhere get different short forms), ``tail`` the
    end of the text's last path segment (its file name and extension, up to half the room) and
    ``head`` its beginning (the folders), both cut on UTF-8 character boundaries.

    :param text: e.g. an S3 key.
    :param max_bytes: the UTF-8 bytes available.
    :returns: a string of at most ``max_bytes`` UTF-8 bytes.
    :raises KeyTooLong: ``max_bytes`` is smaller than the shortest short form (26 bytes).
    """
    if _nbytes(text) <= max_bytes:
        return text
    if max_bytes < _MIN_SHORT_BYTES:
        raise KeyTooLong(f"{max_bytes} bytes is too little room for a shortened key (at least {_MIN_SHORT_BYTES})")
    marker = f"~{hashlib.sha256(text.encode('utf-8')).hexdigest()[:_HASH_CHARS]}~"
    room = max_bytes - len(marker)
    tail = _tail(text.rsplit("/", 1)[-1], room // 2)
    return _head(text, room - _nbytes(tail)) + marker + tail


def derived_key(prefix: str, key: str, suffix: str = "", *, max_bytes: int = MAX_KEY_BYTES) -> str:
    """The key ``prefix + key + suffix``, shortened (see :func:`shorten`) when it would exceed ``max_bytes``.

    Keys that fit are kept as they are (``archive/`` + ``landing/a.csv``), so the usual layout does
    not change; only a key within ``len(prefix + suffix)`` bytes of the limit is shortened, keeping
    ``prefix`` and ``suffix`` whole. Deterministic: a retry derives the same key.

    :param prefix: e.g. ``settings.archive_prefix``.
    :param key: the landed object's key.
    :param suffix: e.g. ``".load_errors.csv"`` or ``"/"`` for a folder.
    :param max_bytes: UTF-8 bytes allowed (S3's 1,024 by default).
    :raises KeyTooLong: ``prefix`` and ``suffix`` leave no room for a shortened key.
    """
    whole = prefix + key + suffix
    if _nbytes(whole) <= max_bytes:
        return whole
    try:
        return prefix + shorten(key, max_bytes - _nbytes(prefix) - _nbytes(suffix)) + suffix
    except KeyTooLong as err:
        raise KeyTooLong(
            f"no key under prefix {prefix!r} with suffix {suffix!r} fits {max_bytes} bytes: {err}"
        ) from None


def archive_key(settings: Any, key: str) -> str:
    """Where a loaded object is archived: ``<archive_prefix><key>``, shortened only when too long."""
    return derived_key(settings.archive_prefix, key)


def quarantine_key(settings: Any, key: str) -> str:
    """Where a bad object is kept: ``<quarantine_prefix><key>``, shortened only when too long."""
    return derived_key(settings.quarantine_prefix, key)


def error_report_key(settings: Any, key: str, *, quarantined: bool = False) -> str:
    """The rejected-rows report beside the archived (or quarantined) object:
    ``<archive_prefix><key>.load_errors.csv``, shortened only when too long (the suffix is kept)."""
    prefix = settings.quarantine_prefix if quarantined else settings.archive_prefix
    return derived_key(prefix, key, ERROR_REPORT_SUFFIX)


def staged_key_root(staging_prefix: str, key: str) -> str:
    """The staging folder of one landed object: ``<staging_prefix><key>/``, shortened when too long.

    It leaves room for a staged name of up to 128 bytes and for ``s3://<bucket>/`` in front, so every
    staged object's URL fits the register's ``staged_from`` (``VARCHAR(1024)``).
    """
    prefix = staging_prefix if not staging_prefix or staging_prefix.endswith("/") else staging_prefix + "/"
    return derived_key(prefix, key.lstrip("/"), "/", max_bytes=MAX_KEY_BYTES - URL_ROOM - STAGED_NAME_BYTES)


def check_key_fits(settings: Any, key: str) -> None:
    """Refuse, before loading, a landed key whose archive, quarantine, report or staging key cannot fit.

    Call it before the COPY, so a file that could never be archived is never loaded.

    :param settings: the shared settings (its ``archive_prefix``, ``quarantine_prefix``, ``staging_prefix``).
    :param key: the landed object's key.
    :raises KeyTooLong: the message names the key's length and the derived key that cannot fit.
    """
    size = _nbytes(key)
    if size > MAX_KEY_BYTES:
        raise KeyTooLong(f"key is {size:,} bytes in UTF-8; S3 keys are at most {MAX_KEY_BYTES:,} bytes")
    try:
        archive_key(settings, key)
        quarantine_key(settings, key)
        error_report_key(settings, key)
        error_report_key(settings, key, quarantined=True)
        staged_key_root(settings.staging_prefix, key)
    except KeyTooLong as err:
        raise KeyTooLong(
            f"key of {size:,} bytes cannot be archived or quarantined: {err}; shorten the prefixes in settings.yaml"
        ) from None
