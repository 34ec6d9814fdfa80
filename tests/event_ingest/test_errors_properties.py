"""Properties of event_ingest.errors: the reason of any exception, and the one rule for faults.

The rule (the module's docstring, and the README): connection errors, timeouts, throttling, HTTP 5xx,
access denied and refused credentials, the local disk full, read-only or failing, and running out of
memory are faults of the infrastructure (the task fails, Airflow retries it); whatever else an input
can provoke is the data's (a reject).
"""

from __future__ import annotations

import errno
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)
from hypothesis import given
from hypothesis import strategies as st

from event_ingest import errors
from event_ingest.errors import is_infrastructure_fault, reason_of
from event_ingest.safe_text import printable
from tests.hypothesis_profiles import pure
from tests.strategies import json_values, texts

#: S3 error codes of throttling, time-outs, server errors and refused access or credentials, as
#: AWS and botocore's retry handler name them.
FAULT_CODES = (
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
)
#: S3 error codes about the request or the object: the data's.
DATA_CODES = (
    "NoSuchKey",
    "404",
    "NotFound",
    "InvalidRange",
    "PreconditionFailed",
    "412",
    "InvalidArgument",
    "InvalidObjectName",
    "KeyTooLongError",
    "400",
    "InvalidRequest",
    "EntityTooLarge",
    "",
)
#: Statuses that are faults whatever the code: server errors, throttling, access denied.
FAULT_STATUSES = (403, 429, 500, 501, 502, 503, 504, 599)
DATA_STATUSES = (200, 206, 304, 400, 404, 405, 409, 411, 412, 416, None)

#: errnos of the local disk or the network that the rule names (docs: full, read-only, failing, refused).
FAULT_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EIO,
    errno.EACCES,
    errno.EPERM,
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOMEM,
    errno.ETIMEDOUT,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
)
#: errnos a name or a layout in the bucket provokes: the data's.
DATA_ERRNOS = (
    errno.ENAMETOOLONG,
    errno.ENOENT,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.EINVAL,
    errno.EILSEQ,
    errno.ELOOP,
    errno.ENOTEMPTY,
    None,
)


class Unprintable:
    """An object whose ``str`` and ``repr`` raise, as a library's broken exception argument might."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class StrNotText(Exception):
    def __str__(self) -> Any:
        return 42


class StrRaises(Exception):
    def __str__(self) -> str:
        raise ValueError("str of this exception raises")


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


#: What an exception may carry: any JSON value, integers past the integer-string limit, nesting past
#: the recursion limit, objects that cannot be shown.
ARGS = st.one_of(
    json_values(max_leaves=4),
    texts(max_size=600),
    st.integers(4290, 4400).map(lambda n: 10**n),
    st.integers(500, 3000).map(nested),
    st.just(Unprintable()),
)
BUILTIN_KINDS = (ValueError, KeyError, TypeError, RuntimeError, RecursionError, UnicodeError, LookupError)
PACKAGE_KINDS = (
    errors.ReportError,
    errors.UnsafePathError,
    errors.UnstorableTextError,
    errors.VerificationError,
    errors.ObjectChangedError,
    errors.ObjectMissingError,
    errors.NotReady,
)


def client_error(code: str, status: int | None, message: str) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "GetObject")


EXCEPTIONS = st.one_of(
    st.builds(
        lambda kind, args: kind(*args),
        st.sampled_from(BUILTIN_KINDS + PACKAGE_KINDS),
        st.lists(ARGS, max_size=3),
    ),
    st.builds(OSError, st.sampled_from(FAULT_ERRNOS + DATA_ERRNOS), texts(), texts()),
    st.builds(
        UnicodeDecodeError,
        st.just("utf-8"),
        st.binary(min_size=1, max_size=10),
        st.integers(0, 5),
        st.integers(0, 10),
        texts(),
    ),
    st.builds(
        client_error,
        st.sampled_from(FAULT_CODES + DATA_CODES) | texts(max_size=10),
        st.sampled_from(FAULT_STATUSES + DATA_STATUSES),
        texts(max_size=600),
    ),
    st.sampled_from([StrNotText("x"), StrRaises("x"), MemoryError(), TimeoutError("slow")]),
)


class TestReasonOf:
    @pure(1000)
    @given(EXCEPTIONS, st.sampled_from(["report", "audio tag", "display log", "raw"]))
    def test_any_exception_gives_a_short_printable_reason(self, exc: BaseException, where: str) -> None:
        reason = reason_of(exc, where)
        assert reason.startswith(f"{where}: ")
        assert printable(reason) == reason
        assert len(reason) <= 6 * 400 + 200
        if not isinstance(exc, errors.EventIngestError):
            assert type(exc).__name__ in reason


class TestIsInfrastructureFault:
    @pure(300)
    @given(EXCEPTIONS)
    def test_never_raises(self, exc: BaseException) -> None:
        assert is_infrastructure_fault(exc) in (True, False)

    @pure(200)
    @given(
        st.sampled_from(FAULT_CODES + DATA_CODES), st.sampled_from(FAULT_STATUSES + DATA_STATUSES), texts()
    )
    def test_client_errors_are_faults_for_throttling_server_errors_and_access(
        self, code: str, status: int | None, message: str
    ) -> None:
        expected = code in FAULT_CODES or status in FAULT_STATUSES
        assert is_infrastructure_fault(client_error(code, status, message)) is expected

    @pure(300)
    @given(st.sampled_from(FAULT_ERRNOS + DATA_ERRNOS), texts(), st.none() | texts())
    def test_os_errors_are_faults_for_the_disk_and_the_network_not_for_names(
        self, number: int | None, message: str, filename: str | None
    ) -> None:
        exc = OSError(number, message, filename) if number is not None else OSError(message)
        assert is_infrastructure_fault(exc) is (number in FAULT_ERRNOS)

    @pure(300)
    @given(
        st.sampled_from([MemoryError, TimeoutError, ConnectionError, ConnectionResetError, BrokenPipeError]),
        st.lists(ARGS, max_size=2),
    )
    def test_memory_connection_and_timeout_errors_are_faults(
        self, kind: type[BaseException], args: list[Any]
    ) -> None:
        assert is_infrastructure_fault(kind(*args))

    @pure(300)
    @given(st.sampled_from(BUILTIN_KINDS + PACKAGE_KINDS), st.lists(ARGS, max_size=2))
    def test_what_data_provokes_is_no_fault(self, kind: type[BaseException], args: list[Any]) -> None:
        assert not is_infrastructure_fault(kind(*args))

    @pure(20)
    @given(texts(max_size=20))
    def test_the_network_failing_under_botocore_is_a_fault(self, endpoint: str) -> None:
        for exc in (
            EndpointConnectionError(endpoint_url=endpoint),
            ConnectTimeoutError(endpoint_url=endpoint),
            ReadTimeoutError(endpoint_url=endpoint),
            IncompleteReadError(actual_bytes=1, expected_bytes=2),
            NoCredentialsError(),
        ):
            assert is_infrastructure_fault(exc), exc
