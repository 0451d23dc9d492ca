"""What happens after an error: one place that says which errors are retried, which fail the file,
and which quarantine it.

- ``RETRY``: the warehouse or S3 had a passing problem (a dropped connection, Redshift's
  serializable isolation violation 1023, a WLM abort or statement timeout, a lock timeout): Airflow
  retries the step; the file stays claimed.
- ``FAIL``: a configuration or permission problem (the COPY role cannot read the bucket, a missing
  table or column, a KMS key): the file is FAILED and kept where it is (not quarantined, the file is
  fine), and people are told what to fix. Retrying would not help.
- ``QUARANTINE``: the file's own data (above MAXERROR, unreadable format): FAILED and moved to the
  quarantine prefix so it does not come back until replayed.

Redshift reports most COPY failures as SQLSTATE ``XX000`` with its own error number and text in the
message (AWS "Troubleshooting data loads", "Serializable isolation violation errors": ``ERROR:
1023``; "STL_ERROR"), so the message is read as well as the SQLSTATE.
"""

from __future__ import annotations

import re
from enum import StrEnum

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class Policy(StrEnum):
    """What the failure handler does with the file of a failed step."""

    RETRY = "retry"
    FAIL = "fail"
    QUARANTINE = "quarantine"


class RetryableLoadError(AirflowException):
    """A passing warehouse problem during a load: Airflow retries the step (the file stays claimed)."""

    policy = Policy.RETRY


class LoadConfigError(AirflowFailException):
    """The load cannot work until a person fixes configuration or permissions: not retried, the file
    is FAILED and kept where it is (not quarantined)."""

    policy = Policy.FAIL


class FileDataError(AirflowFailException):
    """The file's own data cannot be loaded: not retried, FAILED and quarantined."""

    policy = Policy.QUARANTINE


class RunHadFailures(AirflowFailException):
    """Raised at the end of a run that loaded what it could while some of its files failed: the run
    shows failed in the grid; the files were already marked and people already told (``alerted``)."""

    policy = Policy.FAIL

    def __init__(self, message: str, *, alerted: bool) -> None:
        super().__init__(message)
        self.alerted = alerted


# SQLSTATE classes and codes that a retry can cure (PostgreSQL "Appendix A. Error Codes"; Redshift
# uses the same codes where it has them).
_RETRY_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57014",  # query_canceled: statement_timeout, WLM abort / timeout
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
}
_RETRY_CLASSES = ("08", "53")  # connection_exception, insufficient_resources
_FAIL_SQLSTATES = {
    "42501",  # insufficient_privilege
    "42P01",  # undefined_table
    "42703",  # undefined_column
    "3F000",  # invalid_schema_name
    "0A000",  # feature_not_supported: an option the warehouse refuses
    "42601",  # syntax_error: our COPY is wrong for this warehouse
}
_RETRY_TEXT = re.compile(
    r"\b1023\b|serializable isolation violation|conflict with concurrent transaction|"
    r"cancelled by WLM|WLM abort|statement timeout|canceling statement due to|"
    r"S3ServiceException:.*(SlowDown|InternalError|ServiceUnavailable|RequestTimeout)",
    re.IGNORECASE,
)
_FAIL_TEXT = re.compile(
    r"access ?denied|not authorized|AssumeRole|\bKMS\b|kms:|NoSuchBucket|specified bucket does not exist|"
    r"bucket .* is not in the same region|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|"
    r"permission denied|credentials",
    re.IGNORECASE,
)


def database_error_policy(err: BaseException) -> Policy:
    """How to treat an error the warehouse raised while loading a file.

    :param err: a psycopg2 error (or anything else: treated as a data error only when it is a
        psycopg2 ``Error``; other exceptions are ``FAIL``).
    :returns: ``RETRY`` (connection, concurrency, WLM/timeouts, Redshift 1023, S3 throttling),
        ``FAIL`` (permissions, IAM/KMS/S3 access, missing objects of the schema, syntax), else
        ``QUARANTINE`` (the file's data: above MAXERROR, bad format).
    """
    import psycopg2  # the driver: when a load fails, not when a DAG file is parsed

    if isinstance(err, psycopg2.OperationalError | psycopg2.InterfaceError):
        return Policy.RETRY
    if not isinstance(err, psycopg2.Error):
        return Policy.FAIL
    return sqlstate_policy(err.pgcode or "", err.pgerror or str(err))


def sqlstate_policy(code: str, text: str) -> Policy:
    """:func:`database_error_policy` for a SQLSTATE (``code``) and the server's message (``text``)."""
    if code in _RETRY_SQLSTATES or code[:2] in _RETRY_CLASSES or _RETRY_TEXT.search(text):
        return Policy.RETRY
    if code in _FAIL_SQLSTATES or _FAIL_TEXT.search(text):
        return Policy.FAIL
    return Policy.QUARANTINE


def policy_of(error: BaseException | None) -> Policy:
    """The policy an exception carries (``policy`` attribute), ``FAIL`` for any other exception."""
    return getattr(error, "policy", Policy.FAIL) if error is not None else Policy.FAIL
