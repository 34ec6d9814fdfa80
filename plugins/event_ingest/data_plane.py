"""The data plane: how object bodies come out of the bucket.

``S3Hook`` keeps the control plane (connection handling, listing, bucket
checks); the bulk GETs (reports, display logs, audio tags) go through one of
two readers built from the same Airflow connection:

- ``obstore`` (default): the Rust ``object_store`` client. On this project's
  2-core benchmark machine it does about 4 times boto3's GETs per second,
  because boto3 spends about 2 ms of Python CPU on each request. Credentials
  come from the hook and are asked for again before they expire.
- ``boto3``: the hook's own client; the fallback
  (``EVENT_INGEST_DATA_PLANE=boto3``).

Both raise :class:`ObjectMissingError` for an absent key and let every other
error through, so the task fails and Airflow retries it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from botocore.exceptions import ClientError

from event_ingest.files import VerificationError

log = logging.getLogger(__name__)

OBSTORE = "obstore"
BOTO3 = "boto3"
DATA_PLANES = (OBSTORE, BOTO3)

_CHUNK = 1 << 16
#: Bodies up to this size come back in one piece; larger ones are streamed.
_WHOLE_BODY_MAX = 8 << 20
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_CHANGED = frozenset({"PreconditionFailed", "412"})
#: How long credentials read from the hook are used before the hook is asked again. Temporary
#: credentials (assumed roles) live an hour at least; botocore refreshes them on that request.
CREDENTIAL_TTL = dt.timedelta(minutes=10)
#: obstore's own retries ride out a blip; a longer outage fails the task within about 30 s
#: (obstore's default waits up to 3 minutes) so that Airflow's retries, with back-off, take over.
RETRY = {"max_retries": 3, "retry_timeout": dt.timedelta(seconds=30)}


class ObjectMissingError(FileNotFoundError):
    """An object listed a moment ago (or named by a report) is not in the bucket."""


class ObjectChangedError(VerificationError):
    """The object was replaced after it was listed: its ETag no longer matches."""


class ObjectReader(Protocol):
    """Reads object bodies of one bucket."""

    def iter_object(self, key: str, *, if_match: str | None = None) -> Iterator[bytes]:
        """Yield the body of ``key`` in chunks.

        :param if_match: an ETag the object must still have.
        :raises ObjectMissingError: the key is not in the bucket.
        :raises ObjectChangedError: the object no longer has ETag ``if_match``.
        """
        ...


class Boto3Reader:
    """GETs through the hook's boto3 client (thread-safe; pooled connections).

    :param client: a boto3 S3 client, e.g. ``S3Hook.get_conn()``.
    :param bucket: the bucket to read.
    """

    name = BOTO3

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def iter_object(self, key: str, *, if_match: str | None = None) -> Iterator[bytes]:
        try:
            body = self.client.get_object(
                Bucket=self.bucket, Key=key, **({"IfMatch": if_match} if if_match else {})
            )["Body"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise ObjectMissingError(f"{key} is not in the bucket") from None
            if code in _CHANGED:
                raise ObjectChangedError(f"{key} changed since it was listed (ETag {if_match})") from None
            raise
        with body:
            yield from body.iter_chunks(_CHUNK)


class HookCredentialProvider:
    """obstore's ``credential_provider``: the Airflow connection's current credentials.

    Each call reads them from the hook (``S3Hook.get_credentials``, which also
    masks them in task logs) and says they expire after :data:`CREDENTIAL_TTL`,
    so long tasks pick up rotated or refreshed credentials.

    :param hook: the ``S3Hook`` (any ``AwsGenericHook``) of the connection.
    :param region_name: region to ask credentials for.
    """

    def __init__(self, hook: Any, region_name: str | None = None) -> None:
        self.hook = hook
        self.region_name = region_name
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            creds = self.hook.get_credentials(region_name=self.region_name)
        return {
            "access_key_id": creds.access_key,
            "secret_access_key": creds.secret_key,
            "token": creds.token,
            "expires_at": dt.datetime.now(dt.UTC) + CREDENTIAL_TTL,
        }


class ObstoreReader:
    """GETs through obstore (Rust ``object_store``); safe to call from many threads.

    Its calls release the GIL, so the thread pool that runs them overlaps
    requests without paying boto3's per-request Python cost.

    :param store: an ``obstore.store.S3Store`` of the bucket.
    """

    name = OBSTORE

    def __init__(self, store: Any) -> None:
        self.store = store

    @classmethod
    def from_hook(cls, hook: Any, bucket: str, *, concurrency: int = 16) -> ObstoreReader:
        """Build the store from the hook's connection: endpoint, region and credentials."""
        from obstore.store import S3Store

        endpoint = hook.conn_config.get_service_endpoint_url("s3")
        # Not hook.conn_region_name: that builds a boto3 client (about 0.2 s) just to read it.
        region = hook.region_name or "us-east-1"
        options: dict[str, Any] = {"region": region}
        client_options: dict[str, Any] = {"pool_max_idle_per_host": str(max(concurrency, 1))}
        if endpoint:
            # S3-compatible stores are addressed by path, as boto3 does for them.
            options.update(endpoint=endpoint, virtual_hosted_style_request=False)
            client_options["allow_http"] = endpoint.startswith("http://")
        store = S3Store(
            bucket,
            client_options=client_options,
            credential_provider=HookCredentialProvider(hook, region),
            retry_config=RETRY,
            **options,
        )
        return cls(store)

    def iter_object(self, key: str, *, if_match: str | None = None) -> Iterator[bytes]:
        import obstore
        from obstore.exceptions import NotFoundError, PreconditionError

        try:
            result = obstore.get(self.store, key, options={"if_match": if_match} if if_match else None)
        except (NotFoundError, FileNotFoundError):  # obstore raises the built-in one for a 404
            raise ObjectMissingError(f"{key} is not in the bucket") from None
        except PreconditionError:
            raise ObjectChangedError(f"{key} changed since it was listed (ETag {if_match})") from None
        if result.meta["size"] <= _WHOLE_BODY_MAX:
            yield bytes(result.bytes())
            return
        for chunk in result.stream(min_chunk_size=_CHUNK):
            yield bytes(chunk)


def reader_for(name: str, hook: Any, bucket: str, *, concurrency: int = 16) -> ObjectReader:
    """Return the ``name`` reader (see :data:`DATA_PLANES`) for ``bucket`` on ``hook``'s connection."""
    if name == OBSTORE:
        return ObstoreReader.from_hook(hook, bucket, concurrency=concurrency)
    if name == BOTO3:
        return Boto3Reader(hook.get_conn(), bucket)
    raise ValueError(f"unknown data plane {name!r}; choose one of {', '.join(DATA_PLANES)}")
