"""File types and settings: YAML files validated into frozen, typed models.

One YAML file per file type lives in ``include/config/file_types/``; ``include/config/settings.yaml``
holds what all file types share (connection ids, the register table, the archive, quarantine and
staging prefixes). A file that does not validate raises :class:`ConfigError` naming the file and the
field. COPY options are structured fields, never free-text SQL: :mod:`redshift_ingest.copy_sql`
turns them into a COPY statement.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from redshift_ingest import paths
from redshift_ingest.yaml_cache import ParsedYamlCache, cache_dir

# Redshift "Names and identifiers": standard identifiers are ASCII letters, digits, underscore and
# dollar sign, start with a letter or underscore, at most 127 bytes. We accept that set, lower case
# (Redshift folds unquoted names to lower case), so a quoted name means the same as an unquoted one.
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,126}$")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# A closed vocabulary keeps tags useful for filtering in the UI (checked by a DAG-policy test).
KNOWN_TAGS = frozenset({"ingest", "tickit", "csv", "json", "gzip", "zip", "weather", "events", "finance"})
DURATION = re.compile(r"^([1-9][0-9]{0,4})\s*([mhd])$")  # alerts.expect_every: 90m, 6h, 1d
# Types ``on_schema_change: add_columns`` may declare new columns with (AWS "Data types").
COLUMN_TYPE = re.compile(
    r"^(VARCHAR\(\d{1,5}\)|CHAR\(\d{1,4}\)|SMALLINT|INTEGER|BIGINT|DECIMAL\(\d{1,2},\s*\d{1,2}\)|REAL|"
    r"DOUBLE PRECISION|BOOLEAN|DATE|TIMESTAMP|TIMESTAMPTZ|SUPER)$",
    re.IGNORECASE,
)
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# Seconds between two register checks when a file type does not say (see Sensor).
DEFAULT_POLL_SECONDS = {"deferrable": 2, "reschedule": 60}
#: The start date of every DAG of the package (ingest and housekeeping): fixed, never now(); catchup is off.
START_DATE = datetime(2026, 1, 1)


# libyaml's loader when PyYAML has it (about ten times faster than the pure-Python one), same safe subset.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A config file is missing, unreadable or invalid. The message names the file and the field."""


class _Model(BaseModel):
    # defer_build: a model's validator is built when it first validates, not when this module is imported
    # (the maintenance DAGs' file imports it and validates only Settings).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


def quote_identifier(name: str) -> str:
    """Quote a validated identifier for Redshift/PostgreSQL (``orders`` -> ``"orders"``).

    :raises ValueError: ``name`` is not a standard identifier (see ``IDENTIFIER``).
    """
    if not IDENTIFIER.match(name):
        raise ValueError(f"not a valid identifier: {name!r}")
    return f'"{name}"'


class TableName(_Model):
    """A ``schema.table`` name, both parts standard lower-case identifiers."""

    schema_name: str
    table: str

    @classmethod
    def parse(cls, value: str) -> TableName:
        parts = value.split(".")
        if len(parts) != 2 or not all(IDENTIFIER.match(p) for p in parts):
            raise ValueError(f"expected 'schema.table' of lower-case letters, digits, '_' or '$', got {value!r}")
        return cls(schema_name=parts[0], table=parts[1])

    @property
    def quoted(self) -> str:
        """``"schema"."table"``, safe to put in SQL."""
        return f"{quote_identifier(self.schema_name)}.{quote_identifier(self.table)}"

    def __str__(self) -> str:
        return f"{self.schema_name}.{self.table}"


def _single_char(value: str | None, what: str) -> str | None:
    if value is not None and len(value) != 1:
        raise ValueError(f"{what} must be one character, got {value!r}")
    return value


class CopyOptions(_Model):
    """The COPY options a file type may set, with Redshift's meaning (AWS "COPY parameter reference").

    Every field maps to one COPY parameter; none takes SQL text.
    """

    delimiter: str | None = Field(None, description="DELIMITER, one character ('\\t' for tab)")
    ignore_header: int = Field(0, ge=0, le=1000, description="IGNOREHEADER: lines skipped per file")
    quote: str | None = Field(None, description="CSV QUOTE AS; default '\"'")
    null_as: str | None = Field(None, max_length=64, description="NULL AS")
    empty_as_null: bool = False
    blanks_as_null: bool = False
    date_format: str | None = Field(None, max_length=64, description="DATEFORMAT: 'auto' or a pattern")
    time_format: str | None = Field(None, max_length=64, description="TIMEFORMAT: 'auto' or a pattern")
    accept_inv_chars: str | None = Field(None, description="ACCEPTINVCHARS AS: replacement character")
    truncate_columns: bool = False
    max_error: int = Field(0, ge=0, le=100000, description="MAXERROR: rows rejected before the load fails")
    json_paths: str = Field("auto", description="JSON 'auto', 'auto ignorecase' or an s3:// jsonpaths URL")
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        if value == "\\t":
            return "\t"
        return _single_char(value, "delimiter")

    @field_validator("quote", "accept_inv_chars")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        return _single_char(value, "value")

    @field_validator("json_paths")
    @classmethod
    def _json_paths(cls, value: str) -> str:
        if value in ("auto", "auto ignorecase") or re.match(r"^s3://[a-z0-9.\-]{3,63}/\S+$", value):
            return value
        raise ValueError(f"expected 'auto', 'auto ignorecase' or an s3:// URL, got {value!r}")

    @field_validator("date_format", "time_format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9 :/.\-_]+$", value):
            raise ValueError(f"unexpected characters in format {value!r}")
        return value


class Source(_Model):
    """Where a file type's objects land: a key prefix and, optionally, a glob on the key after it."""

    prefix: str = Field(min_length=1, max_length=512)
    pattern: str = "*"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"prefix must be relative and end with '/', got {value!r}")
        return value

    def matches(self, key: str) -> bool:
        """True when ``key`` is under ``prefix`` and the rest of it matches ``pattern``."""
        return key.startswith(self.prefix) and fnmatch.fnmatchcase(key[len(self.prefix) :], self.pattern)


class Target(_Model):
    """The table a file type loads, the DDL file (relative to ``include/sql``) that creates it, and
    how rows are tied to the file that loaded them.

    ``file_id_column`` names a ``VARCHAR(64)`` column of the table (declared in its DDL) that every
    load fills with the loading file's ``file_id``: it makes a file-scoped delete exact, so a forced
    reload or a new version of the same key replaces that file's rows and nothing else.
    ``on_new_version: replace`` deletes, in the new version's COPY transaction, the rows the earlier
    versions of the same S3 key loaded; ``keep`` leaves them (both versions' rows stay).
    """

    table: TableName
    ddl: str
    file_id_column: str | None = Field(None, description="column holding the loading file_id (VARCHAR(64))")
    on_new_version: Literal["keep", "replace"] = "keep"

    @field_validator("file_id_column")
    @classmethod
    def _file_id_column(cls, value: str | None) -> str | None:
        if value is not None and not IDENTIFIER.match(value):
            raise ValueError(f"expected a lower-case identifier (letters, digits, '_', '$'), got {value!r}")
        return value

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, value: object) -> object:
        return TableName.parse(value) if isinstance(value, str) else value

    @field_validator("ddl")
    @classmethod
    def _ddl(cls, value: str) -> str:
        if ".." in Path(value).parts or Path(value).is_absolute() or not value.endswith(".sql"):
            raise ValueError(f"ddl must be a .sql path inside include/sql, got {value!r}")
        return value


class Alerts(_Model):
    """Who hears about failures: Slack (through the connection) and/or email addresses."""

    slack: bool = False
    email: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = ()
    on_rejects: bool = Field(True, description="also alert when a file loads with rejected rows")
    backlog_minutes: int | None = Field(
        None, ge=1, le=7 * 24 * 60, description="alert when the oldest NEW file has waited longer (minutes)"
    )
    expect_every: timedelta | None = Field(
        None, description="alert when no file arrived for this long: '90m', '6h', '1d' (a feed gone silent)"
    )

    @field_validator("expect_every", mode="before")
    @classmethod
    def _expect_every(cls, value: object) -> object:
        if isinstance(value, str) and (match := DURATION.match(value.strip())):
            number, unit = int(match.group(1)), match.group(2)
            return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: number})
        if isinstance(value, str | int) and not isinstance(value, bool):
            raise ValueError(f"expected a duration like '90m', '6h' or '1d', got {value!r}")
        return value


class Sensor(_Model):
    """How a run waits for a NEW file of its type in the register (see :mod:`redshift_ingest.sensors`).

    ``deferrable`` (the default): the wait runs in the triggerer, which asks the register every
    ``poke_interval_seconds`` (default 2) with one query per triggerer for all waiting file types,
    and ends the wait itself when a file is there; no worker slot is held while nothing comes.
    ``reschedule``: for environments without a triggerer, the ``SqlSensor`` pokes from a worker
    every ``poke_interval_seconds`` (default 60),
    taking a worker slot and a scheduler round trip per poke. After ``timeout_seconds`` of waiting
    the run ends skipped and the next one (``@continuous``) waits again.
    """

    mode: Literal["deferrable", "reschedule"] = "deferrable"
    poke_interval_seconds: int | None = Field(None, ge=1, le=3600, description="seconds between register checks")
    timeout_seconds: int = Field(24 * 3600, ge=10, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _interval(self) -> Sensor:
        if self.mode == "reschedule" and self.poke_interval_seconds is not None and self.poke_interval_seconds < 5:
            raise ValueError(
                "poke_interval_seconds: reschedule mode takes a worker slot and a scheduler round trip per "
                "poke; use at least 5 s, or mode deferrable for a fast wait"
            )
        return self

    @property
    def interval_seconds(self) -> int:
        """Seconds between two register checks: the configured value, else 2 (deferrable) or 60 (reschedule)."""
        if self.poke_interval_seconds is not None:
            return self.poke_interval_seconds
        return DEFAULT_POLL_SECONDS[self.mode]


class Batch(_Model):
    """How many files one run of a ``selection: all`` file type claims and loads together.

    AWS "Loading data from Amazon S3" / "Use a manifest file": many files through one COPY load in
    parallel on every slice, and each commit is serialised cluster-wide, so a backlog loads fastest
    in few, large transactions. ``max_files: 1`` loads one file per run.
    """

    max_files: int = Field(1000, ge=1, le=10000, description="files claimed by one run, at most")
    max_bytes: int = Field(
        1024**3, ge=1, le=1024**4, description="bytes claimed by one run, at most (the first file always goes)"
    )


class Prepare(_Model):
    """How files are made COPY-able before the load (see :mod:`redshift_ingest.prepare`)."""

    encoding: Literal["utf-8", "latin-1", "cp1252", "utf-16", "auto"] = "utf-8"
    invalid_chars: Literal["replace", "fail"] = "fail"
    json_records_key: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    zip_members: Literal["single", "manifest"] = "single"
    expected_columns: tuple[str, ...] | None = None


class Merge(_Model):
    """``load_mode: merge``: upsert by key (see :mod:`redshift_ingest.batch_load`).

    ``keys``: the target columns that identify a row (every one must have a value in each file
    row). ``dedupe_by``: a target column ordering versions of a key (a timestamp, a sequence
    number): the row with the greatest value wins, within the batch and against the row already in
    the table; without it the row of the latest file wins (files in registration order).
    """

    keys: tuple[str, ...] = Field(min_length=1, max_length=16)
    dedupe_by: str | None = None

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in value if not IDENTIFIER.match(k)]
        if bad:
            raise ValueError(f"expected lower-case column names (letters, digits, '_', '$'), got {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"a key column is listed twice: {list(value)}")
        return value

    @field_validator("dedupe_by")
    @classmethod
    def _dedupe_by(cls, value: str | None) -> str | None:
        if value is not None and not IDENTIFIER.match(value):
            raise ValueError(f"expected a lower-case column name (letters, digits, '_', '$'), got {value!r}")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> Merge:
        if self.dedupe_by in self.keys:
            raise ValueError(f"dedupe_by {self.dedupe_by!r} is one of the keys: it cannot order versions of a key")
        return self


class FileType(_Model):
    """One kind of file: where it lands, how it is read, where it goes, who is told.

    Built from ``include/config/file_types/<name>.yaml`` by :func:`load_file_types`.
    """

    name: str
    description: str = ""
    owner: str = Field(min_length=1)
    tags: tuple[str, ...] = ()
    source: Source
    target: Target
    format: Literal["csv", "text", "json", "parquet", "orc"]
    compression: Literal["auto", "none", "gzip", "bzip2", "zstd"] = "auto"
    copy_options: CopyOptions = CopyOptions()
    prepare: Prepare = Prepare()
    selection: Literal["latest", "all"] = "all"
    batch: Batch = Batch()
    load_mode: Literal["append", "replace", "merge"] = "append"
    merge: Merge | None = Field(None, description="load_mode merge: the key columns and optional dedupe_by")
    on_schema_change: tuple[Literal["fail", "ignore_extra", "fill_missing", "add_columns"], ...] = Field(
        ("fail",), description="a header that differs from the table: fail, or ignore_extra / add_columns, fill_missing"
    )
    new_column_type: str = Field("VARCHAR(65535)", description="on_schema_change add_columns: the new columns' type")
    schedule: str | None = Field(
        "@continuous",
        description="'@continuous' (default): a new run waits for the next file as soon as the last one ends",
    )
    sensor: Sensor = Sensor()
    retries: int = Field(3, ge=0, le=10)
    retry_delay_seconds: int = Field(30, ge=1, le=3600, description="first retry delay; doubles each retry")
    alerts: Alerts = Alerts()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"expected lower-case letters, digits and '_', starting with a letter: {value!r}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - KNOWN_TAGS)
        if unknown:
            raise ValueError(f"unknown tags {unknown}; known tags: {sorted(KNOWN_TAGS)}")
        return value

    @field_validator("on_schema_change", mode="before")
    @classmethod
    def _policies(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("new_column_type")
    @classmethod
    def _new_column_type(cls, value: str) -> str:
        if not COLUMN_TYPE.match(value.strip()):
            raise ValueError(
                f"expected a Redshift column type such as VARCHAR(65535), BIGINT, DECIMAL(18, 4), "
                f"DOUBLE PRECISION, BOOLEAN, DATE or TIMESTAMP, got {value!r}"
            )
        return value.strip().upper()

    @model_validator(mode="after")
    def _schema_change(self) -> FileType:
        """``on_schema_change`` (see :mod:`redshift_ingest.batch_load`): ``fail`` alone, or a set of
        ``ignore_extra`` / ``add_columns`` (not both) and ``fill_missing``; only where the load can
        read the file's column names: CSV or text with a header line (``ignore_header >= 1``), or
        JSON with ``json_paths`` ``'auto'`` / ``'auto ignorecase'`` (the first record's keys)."""
        policies = self.on_schema_change
        if not policies or len(set(policies)) != len(policies):
            raise ValueError(f"on_schema_change: expected distinct policies, got {list(policies)}")
        if "fail" in policies:
            if len(policies) > 1:
                raise ValueError("on_schema_change: fail stands alone (it refuses any difference)")
            return self
        if {"ignore_extra", "add_columns"} <= set(policies):
            raise ValueError("on_schema_change: ignore_extra drops a file's new columns, add_columns adds them")
        if self.format in ("parquet", "orc"):
            raise ValueError(
                f"on_schema_change: {list(policies)} needs the file's column names from a header line or JSON "
                f"keys; format {self.format} has none (COPY maps its columns by position), so leave "
                "on_schema_change at fail"
            )
        if self.format == "json" and self.copy_options.json_paths not in ("auto", "auto ignorecase"):
            raise ValueError(
                f"on_schema_change: {list(policies)} matches a JSON file's keys to columns, as JSON 'auto' does; "
                "a JSONPaths file names the columns itself: use json_paths 'auto' or 'auto ignorecase'"
            )
        if self.format != "json" and self.copy_options.ignore_header < 1:
            raise ValueError(
                f"on_schema_change: {list(policies)} maps a file's columns by its header: set "
                "copy_options.ignore_header to 1 (or the header's line count)"
            )
        if self.prepare.expected_columns is not None:
            raise ValueError(
                "on_schema_change: prepare.expected_columns refuses every header but that one; drop it "
                "(the table's columns are what a header is compared with)"
            )
        return self

    @model_validator(mode="after")
    def _format_options(self) -> FileType:
        opts = self.copy_options
        if self.format == "json" and (opts.delimiter or opts.quote or opts.ignore_header):
            raise ValueError("delimiter, quote and ignore_header do not apply to format json")
        if self.format == "text" and opts.quote:
            raise ValueError("quote applies to format csv only")
        if self.format != "json" and opts.json_paths != "auto":
            raise ValueError("json_paths applies to format json only")
        if self.format in ("parquet", "orc"):  # AWS "COPY from columnar data formats": typed, self-compressed
            text_options = CopyOptions(max_error=opts.max_error, region=opts.region)
            if opts != text_options or self.compression not in ("auto", "none"):
                raise ValueError(f"format {self.format} takes only max_error and region (and no compression)")
        if (self.load_mode == "merge") != (self.merge is not None):
            raise ValueError(
                "load_mode merge needs merge.keys (the columns identifying a row); "
                "merge: applies to load_mode merge only"
            )
        if (
            self.merge
            and self.target.file_id_column
            and self.target.file_id_column in (*self.merge.keys, self.merge.dedupe_by)
        ):
            raise ValueError(f"merge: {self.target.file_id_column!r} is the file_id column, filled by the pipeline")
        if self.target.on_new_version == "replace":
            if self.load_mode == "replace":
                raise ValueError(
                    "target.on_new_version applies to load_mode append or merge (replace empties the table anyway)"
                )
            if not self.target.file_id_column:
                raise ValueError(
                    "target.on_new_version: replace needs target.file_id_column, to find the rows to replace"
                )
        return self

    @property
    def dag_id(self) -> str:
        return f"ingest_{self.name}"


class Settings(_Model):
    """What every file type shares (``include/config/settings.yaml``)."""

    warehouse_conn_id: str = "redshift_default"
    aws_conn_id: str = "aws_default"
    slack_conn_id: str = "slack_alerts"
    smtp_conn_id: str = "smtp_default"
    register_table: TableName = TableName(schema_name="public", table="mng")
    landing_bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
    landing_prefix: str = "landing/"
    archive_prefix: str = "archive/"
    quarantine_prefix: str = "quarantine/"
    staging_prefix: str = "staging/"
    load_errors_source: Literal["stl_load_errors", "sys_load_error_detail"] = "stl_load_errors"
    lease_minutes: int = Field(120, ge=1, le=24 * 60)
    max_attempts: int = Field(3, ge=1, le=20, description="claims of one file before the reaper fails it")

    @field_validator("register_table", mode="before")
    @classmethod
    def _table(cls, value: object) -> object:
        return TableName.parse(value) if isinstance(value, str) else value

    @field_validator("landing_prefix", "archive_prefix", "quarantine_prefix", "staging_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"prefix must be relative and end with '/', got {value!r}")
        return value

    @property
    def lease(self) -> timedelta:
        return timedelta(minutes=self.lease_minutes)


@cache
def _yaml_cache() -> ParsedYamlCache:
    """This process's parsed-YAML cache (see :mod:`redshift_ingest.yaml_cache`), used where every config is
    read (:func:`check_file_types`); reading one file (a worker's :func:`deployed_file_type`) parses it."""
    return ParsedYamlCache(cache_dir())


def _parse_yaml(raw: bytes) -> object:
    return yaml.load(raw.decode("utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


def _read_yaml(path: Path, cache: ParsedYamlCache | None = None) -> dict:
    try:
        raw = path.read_bytes()
        data = cache.parse(raw, _parse_yaml) if cache is not None else _parse_yaml(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _describe(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: {err.error_count()} invalid field(s)"]
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_settings(path: Path | None = None, *, cache: ParsedYamlCache | None = None) -> Settings:
    """Read and validate ``settings.yaml`` (its parsed YAML from ``cache`` when given).

    :raises ConfigError: naming the file and field.
    """
    path = path or paths.include_dir() / "config" / "settings.yaml"
    try:
        return Settings.model_validate(_read_yaml(path, cache))
    except ValidationError as err:
        raise ConfigError(_describe(path, err)) from err


def load_file_type(path: Path, *, cache: ParsedYamlCache | None = None) -> FileType:
    """Read and validate one file-type YAML file (its parsed YAML from ``cache`` when given).

    The file's stem must equal its ``name`` and its DDL file must exist.

    :raises ConfigError: the message names ``path`` and each invalid field.
    """
    data = _read_yaml(path, cache)
    try:
        file_type = FileType.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(path, err)) from err
    if file_type.name != path.stem:
        raise ConfigError(f"{path}: name: {file_type.name!r} must equal the file name {path.stem!r}")
    ddl_path = path.parents[2] / "sql" / file_type.target.ddl
    if not ddl_path.is_file():
        raise ConfigError(f"{path}: target.ddl: no such file {ddl_path}")
    return file_type


@dataclass(frozen=True)
class FileTypesReport:
    """Every file-type config of a directory: the valid ones and, per refused file, why.

    :param file_types: the valid file types, in file-name order.
    :param errors: file path -> message (naming the file and the field) for each refused file.
    """

    file_types: tuple[FileType, ...]
    errors: dict[Path, str]

    def raise_errors(self) -> None:
        """:raises ConfigError: with every refused file's message, when there is one."""
        if self.errors:
            raise ConfigError("\n".join(self.errors[path] for path in sorted(self.errors)))


def check_file_types(directory: Path | None = None, settings: Settings | None = None) -> FileTypesReport:
    """Validate every file-type YAML of ``directory``, each on its own, then across files.

    A file is refused (and the others kept) when it does not validate (see :func:`load_file_type`),
    when its ``source.prefix`` is not under ``settings.landing_prefix`` (the Lambda and the reconcile
    DAG only look there), when it shares a table with another file type and either loads with
    ``load_mode: replace``, or when some S3 key would match both it and another file type (prefix
    and pattern together; both are refused, each message naming the other).
    Cost: one read per file (its YAML parsed only when it changed since a parse that wrote the
    parsed-YAML cache, :mod:`redshift_ingest.yaml_cache`), then a dict lookup per '/' level of each
    prefix, so linear in the number of file types (plus the pairs that really share a prefix level).

    :param directory: default ``include/config/file_types``.
    :param settings: default: ``settings.yaml`` beside ``directory`` (``<directory>/../settings.yaml``).
    :raises ConfigError: ``settings.yaml`` itself is invalid.
    """
    directory = directory or paths.file_types_dir()
    cache = _yaml_cache()
    if settings is None:
        settings = load_settings(directory.parent / "settings.yaml", cache=cache)
    errors: dict[Path, list[str]] = {}
    valid: dict[Path, FileType] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            file_type = load_file_type(path, cache=cache)
        except ConfigError as err:
            errors.setdefault(path, []).append(str(err))
            continue
        if outside := _outside_landing(path, file_type, settings):
            errors.setdefault(path, []).append(outside)
            continue
        valid[path] = file_type
    for path, message in _conflicts(valid):
        errors.setdefault(path, []).append(f"{path}: {message}")
    refused = set(errors)
    cache.save()  # what this parse read, for the next one (a fresh process, to the dag-processor)
    return FileTypesReport(
        file_types=tuple(ft for path, ft in valid.items() if path not in refused),
        errors={path: "\n".join(messages) for path, messages in errors.items()},
    )


def _outside_landing(path: Path, file_type: FileType, settings: Settings) -> str | None:
    """The error message when the file type's prefix is not under the landing prefix, else None."""
    if file_type.source.prefix.startswith(settings.landing_prefix):
        return None
    return (
        f"{path}: source.prefix: {file_type.source.prefix!r} is outside the landing prefix "
        f"{settings.landing_prefix!r} (settings.yaml): the register never sees keys there"
    )


def _conflicts(valid: dict[Path, FileType]) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, message)`` for both sides of each conflicting pair of file types."""
    by_table: dict[TableName, list[tuple[Path, FileType]]] = {}
    by_prefix: dict[str, list[tuple[Path, FileType]]] = {}
    for path, ft in valid.items():
        by_table.setdefault(ft.target.table, []).append((path, ft))
        by_prefix.setdefault(ft.source.prefix, []).append((path, ft))
    for sharing in by_table.values():
        if len(sharing) > 1 and any(ft.load_mode == "replace" for _, ft in sharing):
            for path, ft in sharing:
                others = [o.name for _, o in sharing if o is not ft]
                yield (
                    path,
                    f"target.table: shares table {ft.target.table} with {', '.join(map(repr, others))}, and "
                    "load_mode replace would delete the other's rows: share a table in append mode only",
                )
    for path, ft in valid.items():
        prefix = ft.source.prefix
        # Prefixes end with '/', so a prefix of this one is a cut just after one of its slashes.
        for cut in (i + 1 for i, char in enumerate(prefix) if char == "/"):
            for other_path, other in by_prefix.get(prefix[:cut], ()):
                if other is ft or (cut == len(prefix) and other.name > ft.name):
                    continue  # same prefix: each pair once
                if globs_intersect(other.source.pattern, _literal(prefix[cut:]) + ft.source.pattern):
                    message = (
                        f"source: keys can match both {ft.name!r} ({prefix!r}, pattern {ft.source.pattern!r}) "
                        f"and {other.name!r} ({other.source.prefix!r}, pattern {other.source.pattern!r}): "
                        "give them prefixes or patterns no key matches together"
                    )
                    yield path, message
                    yield other_path, message


def _literal(text: str) -> str:
    """``text`` as an fnmatch pattern matching exactly itself."""
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


def _glob_tokens(pattern: str) -> list[tuple[str, str]]:
    """fnmatch ``pattern`` as tokens: ``("*", "")``, ``("?", "")``, ``("lit", char)``, ``("set", "[...]")``."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char in "*?":
            if not (char == "*" and tokens and tokens[-1][0] == "*"):
                tokens.append((char, ""))
            i += 1
            continue
        if char == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            j = pattern.find("]", j)
            if j != -1:  # fnmatch: a '[' without its ']' is a literal '['
                tokens.append(("set", pattern[i : j + 1]))
                i = j + 1
                continue
        tokens.append(("lit", char))
        i += 1
    return tokens


_PRINTABLE = [chr(c) for c in range(32, 127)]


def _chars_meet(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Can one character match both one-character tokens?"""
    if a[0] == "?" or b[0] == "?":
        other = b if a[0] == "?" else a
        return other[0] != "set" or any(fnmatch.fnmatchcase(c, other[1]) for c in _PRINTABLE + list(other[1]))
    if a[0] == "lit":
        return fnmatch.fnmatchcase(a[1], b[1]) if b[0] == "set" else a[1] == b[1]
    if b[0] == "lit":
        return fnmatch.fnmatchcase(b[1], a[1])
    candidates = set(_PRINTABLE) | set(a[1]) | set(b[1])
    return any(fnmatch.fnmatchcase(c, a[1]) and fnmatch.fnmatchcase(c, b[1]) for c in candidates)


def globs_intersect(first: str, second: str) -> bool:
    """True when some string matches both fnmatch patterns (``*`` spans '/', as in :meth:`Source.matches`).

    A walk over pairs of positions (at most ``len(first) * len(second)`` of them). Character sets are
    compared on printable ASCII plus the characters they name, so two sets meeting only on other
    characters count as disjoint.
    """
    a, b = _glob_tokens(first), _glob_tokens(second)
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        i, j = state
        if i == len(a) and j == len(b):
            return True
        a_star = i < len(a) and a[i][0] == "*"
        b_star = j < len(b) and b[j][0] == "*"
        if a_star:
            todo.append((i + 1, j))  # the star matches nothing more
            if j < len(b) and not b_star:
                todo.append((i, j + 1))  # the star takes b's next character
        if b_star:
            todo.append((i, j + 1))
            if i < len(a) and not a_star:
                todo.append((i + 1, j))
        if i < len(a) and j < len(b) and not a_star and not b_star and _chars_meet(a[i], b[j]):
            todo.append((i + 1, j + 1))
    return False


def load_file_types(directory: Path | None = None, settings: Settings | None = None) -> tuple[FileType, ...]:
    """Every file type, in file-name order, all of them valid (see :func:`check_file_types`).

    :raises ConfigError: any file is refused; the message names each refused file and why.
    """
    report = check_file_types(directory, settings)
    report.raise_errors()
    return report.file_types


@cache
def default_report() -> FileTypesReport:
    """The deployed file types, valid and refused (cached per process: DAG parsing reads the YAML once)."""
    return check_file_types(settings=default_settings())


def deployed_file_type(dag_id: str) -> FileType | None:
    """The deployed file type whose DAG is ``dag_id`` (``ingest_<name>``), read from its file alone.

    For a worker that parses the DAG file to run one task: one YAML file instead of all of them
    (cross-file conflicts were checked by the DAG processor, which parses every file).

    :returns: None when ``dag_id`` is not an ingest DAG, or no such config file exists.
    :raises ConfigError: the file is invalid or outside the landing prefix.
    """
    name = dag_id.removeprefix("ingest_")
    if name == dag_id or not NAME.match(name):
        return None
    path = paths.file_types_dir() / f"{name}.yaml"
    if not path.is_file():
        return None
    file_type = load_file_type(path)
    if outside := _outside_landing(path, file_type, default_settings()):
        raise ConfigError(outside)
    return file_type


def default_file_types() -> tuple[FileType, ...]:
    """The deployed file types. :raises ConfigError: any deployed file is refused."""
    report = default_report()
    report.raise_errors()
    return report.file_types


@cache
def default_settings() -> Settings:
    """The deployed settings (cached per process)."""
    return load_settings()


def match_file_type(key: str, file_types: tuple[FileType, ...]) -> FileType | None:
    """The file type whose source matches ``key`` (longest prefix wins), or None."""
    matching = [ft for ft in file_types if ft.source.matches(key)]
    if not matching:
        return None
    return max(matching, key=lambda ft: len(ft.source.prefix))
