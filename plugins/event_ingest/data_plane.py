"""The data plane: how object bodies come out of the bucket.

``S3Hook`` keeps the control plane (connection handling, the bucket check); the GETs, and the
listings where obstore can hold every key, go through one of two readers built from the same Airflow
connection:

- ``obstore`` (default): the Rust ``object_store`` client. On this project's 2-core benchmark
  machine it does about 4 times boto3's GETs per second, because boto3 spends about 2 ms of Python
  CPU on each request. Credentials come from the hook and are asked for again before they expire.
  A key that obstore cannot address (control characters, empty or dot segments) is read through
  boto3 instead: any key S3 holds can be read.
- ``boto3``: the hook's own client; the fallback (``EVENT_INGEST_DATA_PLANE=boto3``).

Objects larger than :data:`RANGED_MIN` come in parallel ranged GETs of :data:`PART`, yielded in
order so that the writer streams them to disk and computes the MD5 on the way; the parts in memory
at once are bounded per process (:data:`PARTS_IN_FLIGHT`), whatever the files' sizes.

Both readers raise :class:`~event_ingest.errors.ObjectMissingError` for an absent key and
:class:`~event_ingest.errors.ObjectChangedError` when ``If-Match`` fails; every other error goes
through, for :func:`~event_ingest.errors.is_infrastructure_fault` to judge.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from event_ingest.errors import ObjectChangedError, ObjectMissingError, UnaddressableKeyError

OBSTORE = "obstore"
BOTO3 = "boto3"
DATA_PLANES = (OBSTORE, BOTO3)

_CHUNK = 1 << 20
#: Keys a listing page holds: S3's maximum.
LIST_PAGE = 1000
_REPLACEMENT_CHARACTER = "\ufffd"
#: Objects at least this large are fetched in parallel ranged GETs.
RANGED_MIN = 16 << 20
#: Size of one ranged GET.
PART = 8 << 20
#: Ranged GETs of one object in flight at once.
PARTS_PER_OBJECT = 4
#: Ranged parts in memory at once in the whole process (all files, all threads): an object being
#: fetched holds up to ``PARTS_PER_OBJECT`` parts in flight and the one its writer is on, so
#: ``PARTS_IN_FLIGHT // (PARTS_PER_OBJECT + 1)`` objects are fetched at once; the others wait.
PARTS_IN_FLIGHT = 10
_object_slots = threading.BoundedSemaphore(max(PARTS_IN_FLIGHT // (PARTS_PER_OBJECT + 1), 1))
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
#: What readers yield: ``bytes``, or a view of a ranged part's buffer (not copied).
Chunk = bytes | memoryview
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_CHANGED = frozenset({"PreconditionFailed", "412"})
#: How long credentials read from the hook are used before the hook is asked again. Temporary
#: credentials (assumed roles) live an hour at least; botocore refreshes them on that request.
CREDENTIAL_TTL = dt.timedelta(minutes=10)
#: obstore's own retries ride out a blip; a longer outage fails the task within about 30 s
#: (obstore's default waits up to 3 minutes) so that Airflow's retries, with back-off, take over.
RETRY = {"max_retries": 3, "retry_timeout": dt.timedelta(seconds=30)}


class ObjectReader(Protocol):
    """Reads object bodies of one bucket."""

    def iter_object(
        self, key: str, *, size: int | None = None, if_match: str | None = None
    ) -> Iterator[Chunk]:
        """Yield the body of ``key`` in order, in chunks (``bytes``, or views of big parts).

        :param size: the listed size: from :data:`RANGED_MIN` on, the body comes in parallel ranges.
        :param if_match: an ETag the object must still have.
        :raises ObjectMissingError: the key is not in the bucket.
        :raises ObjectChangedError: the object no longer has ETag ``if_match``.
        """
        ...


def _ranged(
    fetch: Callable[[int, int], Chunk], size: int, *, window: int = PARTS_PER_OBJECT
) -> Iterator[Chunk]:
    """Yield ``fetch(start, end)`` for consecutive parts of ``size`` bytes, ``window`` of them in flight.

    The object holds one of the process's object slots from its first part to its end, so no more
    than :data:`PARTS_IN_FLIGHT` parts are in memory: ``window`` fetched or being fetched, and the
    one its writer still holds while it waits for the next. An object waits for a free slot.
    """
    _return_big_buffers_to_the_system()
    starts = deque(range(0, size, PART))
    pending: deque[Future[Chunk]] = deque()
    with _object_slots, ThreadPoolExecutor(max_workers=window, thread_name_prefix="ranged-get") as pool:
        try:
            while starts or pending:
                while starts and len(pending) < window:
                    start = starts.popleft()
                    pending.append(pool.submit(fetch, start, min(start + PART, size)))
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@functools.cache
def _return_big_buffers_to_the_system() -> None:
    """Have glibc give each buffer of 1 MiB or more its own mapping, returned to the system when freed.

    By default glibc raises its mmap threshold to the size of each large buffer freed, so the parts
    of later objects come from its per-thread arenas, which keep freed memory: fetching 16 objects
    of 64 MiB with 80 MiB of parts in flight measured 200 MB over the process's baseline, 70 MB with
    the threshold fixed (the parts' own size). Once per process, on the first ranged fetch; a
    no-op where the C library has no ``mallopt`` (musl, macOS).
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 1 << 20)


class Boto3Reader:
    """GETs through the hook's boto3 client (thread-safe; pooled connections).

    :param client: a boto3 S3 client, e.g. ``S3Hook.get_conn()``.
    :param bucket: the bucket to read.
    """

    name = BOTO3

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _get(self, key: str, if_match: str | None, **extra: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(
                Bucket=self.bucket, Key=key, **({"IfMatch": if_match} if if_match else {}), **extra
            )["Body"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise ObjectMissingError(f"{key} is not in the bucket") from None
            if code in _CHANGED:
                raise ObjectChangedError(f"{key} changed since it was listed (ETag {if_match})") from None
            raise

    def iter_object(
        self, key: str, *, size: int | None = None, if_match: str | None = None
    ) -> Iterator[Chunk]:
        if size is not None and size >= RANGED_MIN:

            def fetch(start: int, end: int) -> bytes:
                body = self._get(key, if_match, Range=f"bytes={start}-{end - 1}")
                try:
                    return body.read()
                finally:
                    body.close()

            yield from _ranged(fetch, size)
            return
        body = self._get(key, if_match)
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()


class HookCredentialProvider:
    """obstore's ``credential_provider``: the Airflow connection's current credentials.

    Each call reads them from the hook (``S3Hook.get_credentials``, which also masks them in task
    logs) and says they expire after :data:`CREDENTIAL_TTL`, so long tasks pick up rotated or
    refreshed credentials.

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

    Its calls release the GIL, so the thread pool that runs them overlaps requests without paying
    boto3's per-request Python cost.

    :param store: an ``obstore.store.S3Store`` of the bucket.
    :param fallback: reads the keys obstore cannot address.
    """

    name = OBSTORE

    def __init__(self, store: Any, fallback: ObjectReader) -> None:
        self.store = store
        self.fallback = fallback

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
        return cls(store, _LazyBoto3Reader(hook, bucket))

    def _get(self, key: str, if_match: str | None, **options: Any) -> Any:
        import obstore
        from obstore.exceptions import PreconditionError

        if if_match:
            options["if_match"] = if_match
        try:
            return obstore.get(self.store, key, options=options or None)
        except FileNotFoundError:  # obstore raises the built-in one for a 404
            raise ObjectMissingError(f"{key} is not in the bucket") from None
        except PreconditionError:
            raise ObjectChangedError(f"{key} changed since it was listed (ETag {if_match})") from None

    def list_objects(self, prefix: str) -> Iterator[tuple[str, int, str]]:
        """``(key, size, ETag)`` of every object under the folder ``prefix`` (ending in ``/``), by page.

        A page costs about half of botocore's here (botocore parses the XML in Python and each key's
        date), which bounds the listing of a day on a near server. The keys come back exactly as S3
        holds them, or not at all. object_store does not ask for URL-encoded keys, as botocore does,
        so a character that XML 1.0 cannot carry reaches it as the server chose to send it: raw (its
        paths refuse control characters) or replaced by U+FFFD (SeaweedFS does that): a key holding
        U+FFFD is taken as one that may have been replaced.

        :raises UnaddressableKeyError: the prefix or a key under it is one that obstore's paths cannot
            hold, or may have been replaced (possibly after some pages were yielded): list the folder
            through boto3 instead.
        """
        import obstore
        from obstore.exceptions import InvalidPathError

        if not obstore_can_address(prefix.removesuffix("/")):
            raise UnaddressableKeyError(f"obstore cannot list the prefix {prefix!r}")
        try:
            for page in obstore.list(self.store, prefix, chunk_size=LIST_PAGE):
                for meta in page:
                    if _REPLACEMENT_CHARACTER in meta["path"]:
                        raise UnaddressableKeyError(
                            f"a key under {prefix!r} holds U+FFFD: the server may have replaced a character"
                        )
                    yield meta["path"], meta["size"], meta["e_tag"] or ""
        except InvalidPathError as exc:
            raise UnaddressableKeyError(f"obstore cannot hold a key under {prefix!r}: {exc}") from None

    def iter_object(
        self, key: str, *, size: int | None = None, if_match: str | None = None
    ) -> Iterator[Chunk]:
        if not obstore_can_address(key):
            yield from self.fallback.iter_object(key, size=size, if_match=if_match)
            return
        if size is not None and size >= RANGED_MIN:
            yield from _ranged(
                lambda start, end: memoryview(self._get(key, if_match, range=(start, end)).bytes()), size
            )
            return
        result = self._get(key, if_match)
        if result.meta["size"] < RANGED_MIN:
            yield bytes(result.bytes())
            return
        for chunk in result.stream(min_chunk_size=_CHUNK):
            yield bytes(chunk)


class _LazyBoto3Reader:
    """A :class:`Boto3Reader` whose client is built on first use (rarely needed: odd keys only)."""

    def __init__(self, hook: Any, bucket: str) -> None:
        self.hook = hook
        self.bucket = bucket
        self._reader: Boto3Reader | None = None
        self._lock = threading.Lock()

    def iter_object(
        self, key: str, *, size: int | None = None, if_match: str | None = None
    ) -> Iterator[Chunk]:
        with self._lock:
            if self._reader is None:
                self._reader = Boto3Reader(self.hook.get_conn(), self.bucket)
        return self._reader.iter_object(key, size=size, if_match=if_match)


def obstore_can_address(key: str) -> bool:
    """Whether object_store's ``Path`` holds ``key`` exactly: no empty, ``.`` or ``..`` segment,
    no control character, no leading or trailing ``/``."""
    if not key or key.startswith("/") or key.endswith("/"):
        return False
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in key):
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


def reader_for(name: str, hook: Any, bucket: str, *, concurrency: int = 16) -> ObjectReader:
    """Return the ``name`` reader (see :data:`DATA_PLANES`) for ``bucket`` on ``hook``'s connection."""
    if name == OBSTORE:
        return ObstoreReader.from_hook(hook, bucket, concurrency=concurrency)
    if name == BOTO3:
        return Boto3Reader(hook.get_conn(), bucket)
    raise ValueError(f"unknown data plane {name!r}; choose one of {', '.join(DATA_PLANES)}")
