"""The package's exceptions, and the one rule that tells a fault of the infrastructure from bad data.

Everything done for one session runs inside a guard (:mod:`event_ingest.assembler`). What the guard
catches becomes a reject of that session or object, unless :func:`is_infrastructure_fault` says the
error comes from the infrastructure: those fail the task, so that Airflow retries the batch. The rule
lives here, and only here, so that the operators, the batch runner and the loader agree on it.

Faults of the infrastructure:

- S3 unreachable or refusing: connection errors, timeouts, throttling, HTTP 5xx, access denied,
  refused or missing credentials (botocore and obstore alike);
- the database unreachable or lost mid-transaction, refusing rights (a revoked privilege, a read-only
  server), deadlocks and lock waits (MySQLdb, psycopg, sqlite3), see :func:`is_database_fault`;
- the local disk full, read-only, failing or refused (``ENOSPC``, ``EROFS``, ``EIO``, ``EACCES``...);
- a missing connection or variable, and running out of memory.

Everything else an input can provoke (a parse error, a number too large, nesting too deep, a name the
file system refuses, a value a column cannot hold) is bad data: the session or object is rejected
with the exception's kind and message as the reason, and the rest of the batch goes on.
"""

from __future__ import annotations

import errno
import sys

from event_ingest.safe_text import excerpt

__all__ = [
    "ConfError",
    "EventIngestError",
    "NotReady",
    "ObjectChangedError",
    "ObjectMissingError",
    "ReportError",
    "S3AccessError",
    "UnaddressableKeyError",
    "UnsafePathError",
    "UnstorableTextError",
    "VerificationError",
    "is_database_fault",
    "is_infrastructure_fault",
    "is_transient_database_error",
    "reason_of",
]


class EventIngestError(Exception):
    """Base of the package's own exceptions; their message is a reason fit for a reject."""


class ConfError(EventIngestError, ValueError):
    """The run's conf cannot be used: the run fails at once, before anything is read or written."""


class S3AccessError(EventIngestError):
    """The bucket cannot be used: missing, or the credentials are refused."""


class ReportError(EventIngestError, ValueError):
    """An upload report cannot describe a session."""


class NotReady(EventIngestError):
    """The upload is not complete yet: the session is deferred to a later run."""


class UnsafePathError(EventIngestError, ValueError):
    """A path from a report that would leave its session folder."""


class UnstorableTextError(EventIngestError, ValueError):
    """A text value no event-database column can hold (not valid Unicode, or U+0000)."""


class VerificationError(EventIngestError, ValueError):
    """Downloaded bytes are not what the report and the listing say they are."""


class ObjectMissingError(EventIngestError, FileNotFoundError):
    """An object listed a moment ago (or named by a report) is not in the bucket."""


class ObjectChangedError(VerificationError):
    """The object was replaced after it was listed: its ETag no longer matches."""


class UnaddressableKeyError(EventIngestError):
    """A key (or prefix) that obstore's paths cannot hold: list or read it through boto3 instead."""


#: S3 error codes that mean "try again later" or "you may not": never the data's fault. The
#: throttling and time-out codes are those botocore's retry handler retries.
_S3_FAULT_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "BandwidthLimitExceeded",
        "ExpiredToken",
        "InternalError",
        "InvalidAccessKeyId",
        "InvalidToken",
        "PriorRequestNotComplete",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeTooSkewed",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "TokenRefreshRequired",
        "TooManyRequestsException",
    }
)
#: HTTP statuses that are faults whatever the code: access denied, too many requests (5xx apart).
_S3_FAULT_STATUSES = frozenset({403, 429})
#: OS errors of the local disk or the network, as opposed to names the file system refuses.
_OS_FAULT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.EAGAIN,
        errno.ETIMEDOUT,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)
#: MySQL/MariaDB error codes of a lost or refused connection, a shutdown, a deadlock or a lock wait.
_MYSQL_FAULT_CODES = frozenset(
    {1040, 1053, 1077, 1081, 1129, 1152, 1153, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 4031}
    # Access denied to the database, the user, a table or a column; privileges; read-only servers.
    | {1044, 1045, 1142, 1143, 1227, 1290, 1792, 1836}
    | set(range(2000, 2100))
)


def is_infrastructure_fault(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the infrastructure (fail the task, Airflow retries) rather than the data."""
    if isinstance(exc, EventIngestError):
        return isinstance(exc, S3AccessError)
    if isinstance(exc, MemoryError | TimeoutError | ConnectionError):
        return True
    # Before the errno rule: botocore's time-outs and connection errors are OSErrors without errno.
    if _is_airflow_error(exc) or _is_s3_fault(exc) or is_database_fault(exc):
        return True
    return isinstance(exc, OSError) and exc.errno in _OS_FAULT_ERRNOS


def is_database_fault(exc: BaseException) -> bool:
    """Whether a database driver's ``exc`` is about the connection, locking or rights, not the rows sent.

    The drivers are looked up in ``sys.modules``: one that was never imported raised nothing.
    """
    mysqldb = sys.modules.get("MySQLdb")
    if mysqldb is not None and isinstance(exc, mysqldb.Error):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return isinstance(exc, mysqldb.InterfaceError) or code in _MYSQL_FAULT_CODES
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return isinstance(
            exc,
            psycopg.OperationalError
            | psycopg.InterfaceError
            | psycopg.errors.QueryCanceled
            | psycopg.errors.InsufficientPrivilege
            | psycopg.errors.ReadOnlySqlTransaction
            | psycopg.errors.InsufficientResources,
        )
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and any(
            sign in text for sign in ("locked", "busy", "disk", "i/o", "unable to open", "readonly")
        )
    return False


def is_transient_database_error(exc: BaseException) -> bool:
    """Whether a transaction that failed with ``exc`` may simply run again now: a deadlock, a lock wait,
    a serialisation failure. Other faults (a lost connection, refused rights) fail the task instead."""
    mysqldb = sys.modules.get("MySQLdb")
    if mysqldb is not None and isinstance(exc, mysqldb.Error):
        return bool(exc.args) and exc.args[0] in (1205, 1213)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.Error):
        errors = psycopg.errors
        return isinstance(
            exc, errors.DeadlockDetected | errors.SerializationFailure | errors.LockNotAvailable
        )
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        return any(sign in str(exc).lower() for sign in ("locked", "busy"))
    return False


def _is_airflow_error(exc: BaseException) -> bool:
    """A hook's AirflowException: a missing connection or variable, a provider's own failure."""
    sdk_exceptions = sys.modules.get("airflow.sdk.exceptions")
    return sdk_exceptions is not None and isinstance(exc, sdk_exceptions.AirflowException)


def _is_s3_fault(exc: BaseException) -> bool:
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        if isinstance(exc, botocore.ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = str(error.get("Code", ""))
            return code in _S3_FAULT_CODES or int(status) >= 500 or int(status) in _S3_FAULT_STATUSES
        if isinstance(
            exc,
            botocore.HTTPClientError
            | botocore.ConnectionError
            | botocore.IncompleteReadError
            | botocore.NoCredentialsError
            | botocore.PartialCredentialsError
            | botocore.CredentialRetrievalError
            | botocore.NoRegionError,
        ):
            return True
    obstore = sys.modules.get("obstore.exceptions")
    return obstore is not None and isinstance(
        exc,
        obstore.GenericError
        | obstore.PermissionDeniedError
        | obstore.UnauthenticatedError
        | obstore.JoinError,
    )


def reason_of(exc: BaseException, where: str) -> str:
    """A reject's reason for ``exc``: where it happened, the kind of error (unless it is ours), the message.

    Whatever the input put into the message (other languages, control characters, lone surrogates,
    megabytes) comes out printable and short: see :func:`event_ingest.safe_text.excerpt`.
    """
    message = excerpt(_message_of(exc), 400)
    if isinstance(exc, EventIngestError):
        return f"{where}: {message}"
    return f"{where}: {type(exc).__name__}: {message}" if message else f"{where}: {type(exc).__name__}"


def _message_of(exc: BaseException) -> str:
    """``str(exc)``, or a word on why it cannot be had: ``str`` itself raises on some arguments (an
    integer past Python's digit limit, nesting past the recursion limit, a broken ``__str__``)."""
    try:
        return str(exc)
    except Exception as failure:
        return f"(message not shown: {type(failure).__name__})"
