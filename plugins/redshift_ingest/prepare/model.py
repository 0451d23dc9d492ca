"""The prepare step's inputs and outputs: what a file type declares, what comes back, what fails a file."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

Compression = Literal["gzip", "bzip2", "zstd"]


class FileRejected(Exception):
    """The file itself is unusable (data problem): fail the file, quarantine it.

    The message says what was expected and what was found. Infrastructure problems (S3 errors,
    a full disk) are not ``FileRejected``: they propagate as they are, so the task can retry.
    """


@dataclass(frozen=True)
class PrepareSpec:
    """What the file type declares about its files.

    :param file_format: ``"csv"`` (delimited text, also Redshift ``DELIMITER`` text) or ``"json"``.
    :param delimiter: one character; used to parse the CSV header.
    :param quote_char: one character; used to parse the CSV header.
    :param header_lines: CSV records COPY will skip (``IGNOREHEADER``); the last one is the header
        checked against ``expected_columns``. Ignored for JSON.
    :param expected_columns: CSV header check (case-insensitive, whitespace/BOM/quotes stripped;
        needs ``header_lines >= 1``), or for JSON the keys of the first record (any order;
        case-sensitive unless ``json_ignorecase``); ``None`` = no check.
    :param encoding: declared source encoding, any Python codec name (``utf-8``, ``latin-1``,
        ``cp1252``, ``utf-16`` ...), or ``"auto"``: UTF-8 when the bytes are UTF-8, else detected per
        file among cp1252 and latin-1 (see :func:`.text.detect_legacy_encoding`). A UTF-8 or UTF-16
        byte order mark overrides it.
    :param invalid_chars: bytes that do not decode: ``"replace"`` each byte with ``?`` (what COPY's
        ``ACCEPTINVCHARS`` does) or ``"fail"`` the file.
    :param json_records_key: e.g. ``"Records"`` to unwrap ``{"Records": [...]}`` (CloudTrail).
    :param json_ignorecase: JSON keys match column names case-insensitively (COPY ``JSON 'auto
        ignorecase'``); otherwise exactly, as ``JSON 'auto'`` matches them.
    :param zip_members: a zip with several data members: ``"single"`` rejects it, ``"manifest"``
        loads them all through a Redshift manifest.
    :raises ValueError: an inconsistent spec (a configuration error, not a data problem).
    """

    file_format: Literal["csv", "json"]
    delimiter: str = ","
    quote_char: str = '"'
    header_lines: int = 0
    expected_columns: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    invalid_chars: Literal["replace", "fail"] = "fail"
    json_records_key: str | None = None
    json_ignorecase: bool = False
    zip_members: Literal["single", "manifest"] = "single"

    def __post_init__(self) -> None:
        if self.file_format not in ("csv", "json"):
            raise ValueError(f"file_format must be 'csv' or 'json', not {self.file_format!r}")
        if len(self.delimiter) != 1 or len(self.quote_char) != 1:
            raise ValueError("delimiter and quote_char must be one character each")
        if self.header_lines < 0:
            raise ValueError(f"header_lines must be >= 0, not {self.header_lines}")
        if self.expected_columns is not None and self.file_format == "csv" and self.header_lines < 1:
            raise ValueError("expected_columns needs header_lines >= 1 for file_format 'csv'")
        if self.json_records_key is not None and self.file_format != "json":
            raise ValueError("json_records_key applies to file_format 'json' only")
        if self.invalid_chars not in ("replace", "fail"):
            raise ValueError(f"invalid_chars must be 'replace' or 'fail', not {self.invalid_chars!r}")
        if self.zip_members not in ("single", "manifest"):
            raise ValueError(f"zip_members must be 'single' or 'manifest', not {self.zip_members!r}")
        try:
            if self.encoding != "auto":
                codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r}") from None


@dataclass(frozen=True)
class PreparedFile:
    """What COPY should read after the prepare step.

    :param copy_from: ``s3://bucket/key`` for ``COPY ... FROM``: the original object, a staged
        object, or a manifest.
    :param manifest: ``True`` when ``copy_from`` is a Redshift manifest (``COPY ... MANIFEST``).
    :param compression: what COPY must be told (``GZIP``, ``BZIP2``, ``ZSTD``) or ``None``.
    :param staged_keys: keys written under the staging prefix, manifest last (empty for pass-through).
    :param detected: short description, e.g. ``"zip (2 members) -> gzip"``.
    :param header: the file's column names, if read: the CSV header (whitespace, quotes and BOM
        stripped), or the keys of the first JSON record, as written.
    """

    copy_from: str
    manifest: bool
    compression: Compression | None
    staged_keys: tuple[str, ...]
    detected: str
    header: tuple[str, ...] | None
