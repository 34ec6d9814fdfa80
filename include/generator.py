"""Synthetic drive sessions for tests, the demo and benchmarks.

Writes sessions laid out as docs/contract.md §1 describes into any S3 bucket, through a boto3
client, and returns a :class:`Manifest`: what a correct ingest of that bucket must end with (sessions and
events loaded, with their expected time resolution; objects rejected and why; sessions deferred).

Everything is derived from ``seed``: each session draws from its own ``random.Random`` seeded with
(seed, day, vehicle number), so the same arguments always write the same bytes, whatever the number of
workers, and adding sessions never changes the ones already there. No wall clock goes into the data.

Run ``python -m include.generator --help`` for the command line; credentials come from the standard AWS
environment variables.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import sys
import time
import wave
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

BAD_KINDS: tuple[str, ...] = (
    "malformed_json",
    "missing_fields",
    "session_id_mismatch",
    "file_absent",
    "size_mismatch",
    "md5_mismatch",
    "path_escape_dotdot",
    "path_escape_absolute",
    "non_utf8_display_log",
    "incomplete_upload",
)
# Bad kinds that reject the whole session (keyed by its report); the other kinds reject one object.
SESSION_REJECT_KINDS: frozenset[str] = frozenset({"malformed_json", "missing_fields", "session_id_mismatch"})

REPORT_SUFFIX = "_logged_Upload_Report.json"
FRAMES_PER_SECOND = 30
SAMPLE_RATE_HZ = 16_000
SAMPLE_WIDTH_BYTES = 2
WAV_HEADER_BYTES = 44
DOTDOT_ESCAPE_PATH = "../../../escape.wav"
ABSOLUTE_ESCAPE_PATH = "/etc/escape.wav"

_MS_PER_DAY = 86_400_000
_SOFTWARE_VERSIONS = ("4.11.2", "4.12.0", "4.12.1", "5.0.0")
_OVERLAY_TEXTS = (
    "overlay=speed",
    "overlay=nav",
    "overlay=speed value=52",
    "hud=lane_assist state=on",
    "alert=none",
    "overlay=map zoom=14",
)
_CONTENT_TYPES = {"json": "application/json", "wav": "audio/wav", "log": "text/plain", "mp4": "video/mp4"}
_TAG_NAME = re.compile(r"^AudioTags/tag_(\d+)\.wav$")


@dataclass
class ExpectedEvent:
    """An audio tag that must load, as the events table should hold it.

    :param key: full S3 key of the wav.
    :param time_source: ``report``, ``display_log`` or ``unresolved``.
    :param event_time: ``YYYY-MM-DDTHH:MM:SS.fffZ`` after resolution, None when unresolved.
    :param frame_id: the tag's frame id from the report.
    """

    key: str
    time_source: str
    event_time: str | None
    frame_id: int


@dataclass
class ExpectedReject:
    """An object the ingest must record as rejected.

    :param object_key: the report's key for a whole-session reject; else the full key of the bad file,
        or, for a path that leaves the session folder, the session prefix followed by the raw path.
    :param session_id: the session's folder name.
    :param kind: one of :data:`BAD_KINDS`.
    """

    object_key: str
    session_id: str
    kind: str


@dataclass
class ExpectedSession:
    """A session that must end loaded.

    :param events: relative path (``AudioTags/tag_0001.wav``) -> expectation, only the events that load.
    """

    session_id: str
    day: str
    report_key: str
    vehicle_id: str
    events: dict[str, ExpectedEvent]


@dataclass
class Manifest:
    """What a correct ingest of the generated data ends with.

    :param sessions: session id -> expectation, for every session that must end loaded.
    :param rejects: objects that must be recorded as rejected.
    :param deferred: ids of sessions whose upload is not complete: neither loaded nor rejected.
    """

    sessions: dict[str, ExpectedSession] = field(default_factory=dict)
    rejects: list[ExpectedReject] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    def merge(self, other: Manifest) -> Manifest:
        """Return a new manifest holding both; for a session in both, events are united (``other`` wins)."""
        sessions = dict(self.sessions)
        for session_id, theirs in other.sessions.items():
            ours = sessions.get(session_id)
            events = {**ours.events, **theirs.events} if ours else dict(theirs.events)
            sessions[session_id] = ExpectedSession(
                session_id=theirs.session_id,
                day=theirs.day,
                report_key=theirs.report_key,
                vehicle_id=theirs.vehicle_id,
                events=events,
            )
        rejects = list(self.rejects) + [reject for reject in other.rejects if reject not in self.rejects]
        deferred = list(dict.fromkeys([*self.deferred, *other.deferred]))
        return Manifest(sessions=sessions, rejects=rejects, deferred=deferred)

    def to_json(self) -> str:
        """Serialize with sorted keys, so equal manifests give equal text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        sessions = {
            session_id: ExpectedSession(
                **{
                    **session,
                    "events": {rel: ExpectedEvent(**event) for rel, event in session["events"].items()},
                }
            )
            for session_id, session in raw["sessions"].items()
        }
        rejects = [ExpectedReject(**reject) for reject in raw["rejects"]]
        return cls(sessions=sessions, rejects=rejects, deferred=list(raw["deferred"]))


@dataclass
class GenerationStats:
    """What a generation wrote: session folders, audio tag objects, bytes, wall seconds."""

    sessions: int = 0
    tags: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.sessions} sessions, {self.tags} tags, {self.bytes} bytes in {self.seconds:.2f} s"
            f" ({self.bytes / max(self.seconds, 1e-9) / 1e6:.1f} MB/s)"
        )


@dataclass
class _SessionBuild:
    """One session's objects, ready to upload: ``objects`` first, in order, then the report."""

    session_id: str
    objects: list[tuple[str, bytes]]
    report_key: str
    report_body: bytes
    tags: int
    expected: ExpectedSession | None
    rejects: list[ExpectedReject]
    deferred: bool


def session_prefix(prefix: str, day: date, session_id: str) -> str:
    """Return the key prefix of a session folder: ``{prefix}YYYY/MM/DD/{session_id}/``."""
    return f"{prefix}{day:%Y/%m/%d}/{session_id}/"


def generate_bucket(
    s3_client: Any,
    bucket: str,
    *,
    prefix: str = "",
    days: Sequence[date],
    sessions_per_day: int | Mapping[date, int] = 3,
    tags_per_session: int = 5,
    untimed_share: float = 0.3,
    unlogged_share: float = 0.3,
    bad_kinds: Sequence[str] = (),
    seed: int = 0,
    tag_bytes: int = 32 * 1024,
    workers: int = 16,
    vehicle_offset: int = 0,
    raw_bytes: int | None = None,
) -> Manifest:
    """Write synthetic sessions into ``bucket`` and return what a correct ingest must end with.

    :param s3_client: a boto3 S3 client; give it at least ``workers`` pooled connections.
    :param bucket: an existing bucket.
    :param prefix: empty, or ending with ``/``.
    :param days: partition days to fill.
    :param sessions_per_day: good sessions per day, or a mapping day -> count (days absent get none).
        A day with none gets no object at all (an empty day), unless it is the first and ``bad_kinds``
        puts bad sessions there.
    :param tags_per_session: audio tags per good session (bad sessions get at least 2).
    :param untimed_share: share of tags whose report timestamp is null (resolved via the display logs).
    :param unlogged_share: share of those untimed tags whose frame no display log has (-> unresolved).
    :param bad_kinds: kinds from :data:`BAD_KINDS`; one extra bad session each, on the first day.
    :param seed: seeds everything written.
    :param tag_bytes: approximate size of each wav (within +-10%).
    :param workers: sessions uploaded in parallel.
    :param raw_bytes: size of each session's raw camera file, listed with its MD5 in the report
        (default: a tiny file of 24 to 72 bytes, no MD5).
    :param vehicle_offset: first vehicle number minus one. Vehicle numbers used on a day are
        ``vehicle_offset + 1`` to ``vehicle_offset + count (+ len(bad_kinds) on the first day)``;
        a later call with a higher offset adds new sessions (late arrivals) without touching these.
    """
    manifest, _ = _generate(
        s3_client,
        bucket,
        prefix=prefix,
        days=days,
        sessions_per_day=sessions_per_day,
        tags_per_session=tags_per_session,
        untimed_share=untimed_share,
        unlogged_share=unlogged_share,
        bad_kinds=bad_kinds,
        seed=seed,
        tag_bytes=tag_bytes,
        workers=workers,
        vehicle_offset=vehicle_offset,
        raw_bytes=raw_bytes,
    )
    return manifest


def add_audio_tag(
    s3_client: Any,
    bucket: str,
    *,
    prefix: str,
    day: date,
    session_id: str,
    seed: int = 0,
    tag_bytes: int = 32 * 1024,
) -> ExpectedEvent:
    """Upload a session again with one more audio tag, its timestamp given in the report.

    Uploads the new wav, then replaces the report with the existing one plus the new file entry (and a
    later ``upload.finished_at``): the report last, as uploaders do.

    :return: the new event's expectation; its relative path is ``key`` minus the session prefix.
    """
    _check_prefix(prefix)
    folder = session_prefix(prefix, day, session_id)
    report_key = f"{folder}{session_id}{REPORT_SUFFIX}"
    report = json.loads(s3_client.get_object(Bucket=bucket, Key=report_key)["Body"].read())
    files = report["files"]
    tags = [entry for entry in files if entry.get("type") == "audio_tag"]
    numbers = [int(m.group(1)) for entry in tags if (m := _TAG_NAME.match(str(entry.get("path", ""))))]
    number = max(numbers, default=0) + 1
    rng = random.Random(f"event-ingest:{seed}:add:{session_id}:{number}")

    start_ms = _parse_ms(report["start_time"])
    end_ms = _parse_ms(report["end_time"]) if report.get("end_time") else start_ms + 3_600_000
    anchor = next((entry for entry in tags if entry.get("timestamp") and "frame_id" in entry), None)
    offset_frames = rng.randrange(
        FRAMES_PER_SECOND, max(FRAMES_PER_SECOND + 1, (end_ms - start_ms) * FRAMES_PER_SECOND // 1000)
    )
    if anchor is not None:
        # Keep frame ids and times on the session's own clock.
        anchor_frames = round((_parse_ms(anchor["timestamp"]) - start_ms) * FRAMES_PER_SECOND / 1000)
        frame_id = int(anchor["frame_id"]) - anchor_frames + offset_frames
    else:
        frame_id = max((int(entry.get("frame_id", 0)) for entry in tags), default=100_000) + offset_frames
    event_time = _iso_ms(start_ms + offset_frames * 1000 // FRAMES_PER_SECOND)

    relpath = f"AudioTags/tag_{number:04d}.wav"
    data, duration_s = _wav_bytes(rng, tag_bytes)
    key = folder + relpath
    _put(s3_client, bucket, key, data)
    files.append(
        {
            "path": relpath,
            "type": "audio_tag",
            "size_bytes": len(data),
            "md5": _md5(data),
            "frame_id": frame_id,
            "timestamp": event_time,
            "duration_s": duration_s,
        }
    )
    upload = report.setdefault("upload", {})
    finished_ms = _parse_ms(upload["finished_at"]) if upload.get("finished_at") else end_ms
    upload["finished_at"] = _iso_ms(finished_ms + rng.randint(5, 120) * 60_000)
    _put(s3_client, bucket, report_key, _report_bytes(report))
    return ExpectedEvent(key=key, time_source="report", event_time=event_time, frame_id=frame_id)


def ensure_bucket(s3_client: Any, bucket: str) -> None:
    """Create ``bucket`` unless it exists (idempotent)."""
    try:
        s3_client.head_bucket(Bucket=bucket)
        return
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3_client.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3_client.create_bucket(**kwargs)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _generate(
    s3_client: Any,
    bucket: str,
    *,
    prefix: str,
    days: Sequence[date],
    sessions_per_day: int | Mapping[date, int],
    tags_per_session: int,
    untimed_share: float,
    unlogged_share: float,
    bad_kinds: Sequence[str],
    seed: int,
    tag_bytes: int,
    workers: int,
    vehicle_offset: int,
    raw_bytes: int | None = None,
) -> tuple[Manifest, GenerationStats]:
    _check_prefix(prefix)
    unknown = sorted(set(bad_kinds) - set(BAD_KINDS))
    if unknown:
        raise ValueError(f"unknown bad kinds {unknown}; known: {', '.join(BAD_KINDS)}")
    for name, share in (("untimed_share", untimed_share), ("unlogged_share", unlogged_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {share}")
    if tags_per_session < 0 or tag_bytes <= WAV_HEADER_BYTES or workers < 1:
        raise ValueError("tags_per_session must be >= 0, tag_bytes > 44 and workers >= 1")

    plans: list[Callable[[], _SessionBuild]] = []
    for day_index, day in enumerate(days):
        count = sessions_per_day.get(day, 0) if isinstance(sessions_per_day, Mapping) else sessions_per_day
        kinds: list[str | None] = [None] * count
        if day_index == 0:
            kinds += list(bad_kinds)
        for index, kind in enumerate(kinds):
            vehicle = vehicle_offset + index + 1
            tags = tags_per_session if kind is None else max(tags_per_session, 2)
            plans.append(
                partial(
                    _build_session,
                    prefix=prefix,
                    day=day,
                    vehicle=vehicle,
                    seed=seed,
                    tags=tags,
                    untimed_share=untimed_share,
                    unlogged_share=unlogged_share,
                    tag_bytes=tag_bytes,
                    kind=kind,
                    raw_bytes=raw_bytes,
                )
            )

    started = time.monotonic()
    manifest = Manifest()
    stats = GenerationStats()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generator") as pool:
        futures: list[Future[_SessionBuild]] = [
            pool.submit(_build_and_upload, s3_client, bucket, plan) for plan in plans
        ]
        try:
            for future in futures:
                build = future.result()
                stats.sessions += 1
                stats.tags += build.tags
                stats.bytes += sum(len(body) for _, body in build.objects) + len(build.report_body)
                if build.expected is not None:
                    manifest.sessions[build.expected.session_id] = build.expected
                manifest.rejects.extend(build.rejects)
                if build.deferred:
                    manifest.deferred.append(build.session_id)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    stats.seconds = time.monotonic() - started
    return manifest, stats


def _build_and_upload(s3_client: Any, bucket: str, plan: Callable[[], _SessionBuild]) -> _SessionBuild:
    # Built inside the worker, so memory holds only the sessions in flight.
    build = plan()
    for key, body in build.objects:
        _put(s3_client, bucket, key, body)
    _put(s3_client, bucket, build.report_key, build.report_body)
    return build


def _build_session(
    *,
    prefix: str,
    day: date,
    vehicle: int,
    seed: int,
    tags: int,
    untimed_share: float,
    unlogged_share: float,
    tag_bytes: int,
    kind: str | None,
    raw_bytes: int | None = None,
) -> _SessionBuild:
    rng = random.Random(f"event-ingest:{seed}:{day.isoformat()}:{vehicle}")
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    start_ms = day_ms + rng.randrange(_MS_PER_DAY)
    duration_ms = rng.randint(20 * 60_000, 90 * 60_000)
    end_ms = start_ms + duration_ms
    vehicle_id = f"veh{vehicle:03d}"
    session_id = _session_id(start_ms, vehicle_id)
    folder = session_prefix(prefix, day, session_id)
    report_key = f"{folder}{session_id}{REPORT_SUFFIX}"

    # Frame ids count display frames from an arbitrary base; a frame's time follows from its offset.
    frame_base = rng.randint(10_000, 900_000)
    duration_frames = duration_ms * FRAMES_PER_SECOND // 1000

    def frame_time_ms(frame: int) -> int:
        return start_ms + (frame - frame_base) * 1000 // FRAMES_PER_SECOND

    untimed = set(rng.sample(range(tags), _stochastic_round(tags * untimed_share, rng)))
    unlogged = set(rng.sample(sorted(untimed), _stochastic_round(len(untimed) * unlogged_share, rng)))
    if kind == "non_utf8_display_log" and not untimed - unlogged:
        # The bad log must hide at least one frame it would otherwise resolve.
        untimed.add(0)
        unlogged.discard(0)
    bad_tag = tags - 1 if kind in ("file_absent", "size_mismatch", "md5_mismatch") else None

    first_offset, last_offset = FRAMES_PER_SECOND, duration_frames - 5 * FRAMES_PER_SECOND
    tag_frames = [frame_base + o for o in sorted(rng.sample(range(first_offset, last_offset), tags))]

    objects: list[tuple[str, bytes]] = []
    entries: list[dict[str, Any]] = []
    events: dict[str, ExpectedEvent] = {}
    rejects: list[ExpectedReject] = []
    for index, frame in enumerate(tag_frames):
        relpath = f"AudioTags/tag_{index + 1:04d}.wav"
        key = folder + relpath
        data, duration_s = _wav_bytes(rng, tag_bytes)
        time_iso = _iso_ms(frame_time_ms(frame))
        entry: dict[str, Any] = {
            "path": relpath,
            "type": "audio_tag",
            "size_bytes": len(data),
            "md5": _md5(data),
            "frame_id": frame,
            "timestamp": None if index in untimed else time_iso,
            "duration_s": duration_s,
        }
        if index == bad_tag:
            if kind == "size_mismatch":
                entry["size_bytes"] = len(data) + rng.randint(1, 999)
            elif kind == "md5_mismatch":
                entry["md5"] = _md5(data[::-1] + b"tampered")
            rejects.append(ExpectedReject(object_key=key, session_id=session_id, kind=str(kind)))
        else:
            if index not in untimed:
                events[relpath] = ExpectedEvent(key, "report", time_iso, frame)
            elif index in unlogged or kind == "non_utf8_display_log":
                events[relpath] = ExpectedEvent(key, "unresolved", None, frame)
            else:
                events[relpath] = ExpectedEvent(key, "display_log", time_iso, frame)
        if kind != "file_absent" or index != bad_tag:
            objects.append((key, data))
        entries.append(entry)

    if kind in ("path_escape_dotdot", "path_escape_absolute"):
        raw_path = DOTDOT_ESCAPE_PATH if kind == "path_escape_dotdot" else ABSOLUTE_ESCAPE_PATH
        phantom = rng.randbytes(64)
        entries.append(
            {
                "path": raw_path,
                "type": "audio_tag",
                "size_bytes": len(phantom),
                "md5": _md5(phantom),
                "frame_id": frame_base + rng.randrange(duration_frames),
                "timestamp": _iso_ms(start_ms + rng.randrange(duration_ms)),
                "duration_s": 1.0,
            }
        )
        rejects.append(ExpectedReject(object_key=folder + raw_path, session_id=session_id, kind=kind))

    # Display logs: a spread of frames plus every logged untimed tag's frame, never an unlogged one.
    logged_tag_frames = [tag_frames[i] for i in sorted(untimed - unlogged)]
    excluded = {tag_frames[i] for i in unlogged} | set(logged_tag_frames)
    spread = {frame_base + rng.randrange(duration_frames) for _ in range(36)} - excluded
    frames = sorted(spread | set(logged_tag_frames))
    log_count = 1 if kind == "non_utf8_display_log" else rng.choice((1, 2))
    log_files = _display_logs(rng, frames, frame_time_ms, logged_tag_frames, log_count, vehicle_id)
    for log_index, lines in enumerate(log_files):
        relpath = f"AV_logs/DisplayLogs/display_{log_index:03d}.log"
        key = folder + relpath
        if kind == "non_utf8_display_log":
            lines = _corrupt_encoding(lines)
            rejects.append(ExpectedReject(object_key=key, session_id=session_id, kind=kind))
        body = b"".join(line + b"\n" for line in lines)
        objects.append((key, body))
        entries.append({"path": relpath, "type": "display_log", "size_bytes": len(body), "md5": _md5(body)})

    header = b"\x00\x00\x00\x18ftypmp42"
    if raw_bytes is None:
        camera = header + rng.randbytes(rng.randint(16, 64))
        entries.append({"path": "camera/front_000.mp4", "type": "raw", "size_bytes": len(camera)})
    else:
        # One random MiB repeated: drawing tens of MB from the generator takes seconds per file.
        block = rng.randbytes(min(max(raw_bytes - len(header), 0), 1 << 20))
        camera = (header + block * -(-raw_bytes // max(len(block), 1)))[:raw_bytes]
        entries.append(
            {"path": "camera/front_000.mp4", "type": "raw", "size_bytes": len(camera), "md5": _md5(camera)}
        )
    objects.append((folder + "camera/front_000.mp4", camera))

    report: dict[str, Any] = {
        "report_version": 1,
        "session_id": session_id,
        "vehicle_id": vehicle_id,
        "driver_id": f"drv-{rng.randint(1, 99):02d}",
        "start_time": _iso_ms(start_ms),
        "end_time": _iso_ms(end_ms),
        "software_version": rng.choice(_SOFTWARE_VERSIONS),
        "upload": {"status": "complete", "finished_at": _iso_ms(end_ms + rng.randint(10, 240) * 60_000)},
        "files": entries,
    }
    if kind == "missing_fields":
        del report["vehicle_id"]
    elif kind == "session_id_mismatch":
        report["session_id"] = _session_id(start_ms + 1000, vehicle_id)
    elif kind == "incomplete_upload":
        report["upload"] = {"status": "in_progress", "finished_at": None}
    report_body = _report_bytes(report)
    if kind == "malformed_json":
        report_body = report_body[: len(report_body) // 2]

    expected: ExpectedSession | None = ExpectedSession(
        session_id=session_id,
        day=day.isoformat(),
        report_key=report_key,
        vehicle_id=vehicle_id,
        events=events,
    )
    if kind in SESSION_REJECT_KINDS:
        expected = None
        rejects = [ExpectedReject(object_key=report_key, session_id=session_id, kind=str(kind))]
    elif kind == "incomplete_upload":
        expected = None
    tag_objects = sum(1 for key, _ in objects if key.endswith(".wav"))
    return _SessionBuild(
        session_id=session_id,
        objects=objects,
        report_key=report_key,
        report_body=report_body,
        tags=tag_objects,
        expected=expected,
        rejects=rejects,
        deferred=kind == "incomplete_upload",
    )


def _display_logs(
    rng: random.Random,
    frames: list[int],
    frame_time_ms: Callable[[int], int],
    tag_frames: list[int],
    log_count: int,
    vehicle_id: str,
) -> list[list[bytes]]:
    """Lay frames out over ``log_count`` chronological logs, with a repeated frame and junk lines."""
    split = len(frames) // 2 if log_count == 2 else len(frames)
    chunks = [frames[:split], frames[split:]] if log_count == 2 else [frames]
    files: list[list[bytes]] = []
    for chunk in chunks:
        files.append(
            [f"{_iso_ms(frame_time_ms(f))} frame_id={f} {rng.choice(_OVERLAY_TEXTS)}".encode() for f in chunk]
        )

    # A frame shown again later: the first line is the one that counts. Prefer a tag's frame, so the
    # rule decides an expectation.
    repeated = tag_frames[0] if tag_frames else rng.choice(frames) if frames else None
    if repeated is not None:
        chunk_index = next(i for i, chunk in enumerate(chunks) if repeated in chunk)
        last_ms = frame_time_ms(chunks[chunk_index][-1])
        files[chunk_index].append(
            f"{_iso_ms(last_ms + 1500)} frame_id={repeated} overlay=speed repeat=1".encode()
        )

    some_ms = frame_time_ms(frames[0]) if frames else 0
    junk = [
        b"",
        f"{_iso_ms(some_ms)} overlay=boot no frame here".encode(),
        f"{_iso_ms(some_ms)} frame_id=n/a overlay=speed".encode(),
        b"garbage frame_id=7 not a timestamp",
        f"{_iso_ms(some_ms)[:15]}".encode(),
    ]
    for lines in files:
        for line in rng.sample(junk, 3):
            lines.insert(rng.randrange(len(lines) + 1), line)
        lines.insert(0, f"# DisplayLog v3 vehicle={vehicle_id}".encode())
    return files


def _corrupt_encoding(lines: list[bytes]) -> list[bytes]:
    """Put bytes that are not UTF-8 into the first frame line."""
    lines = list(lines)
    for index, line in enumerate(lines):
        if b" frame_id=" in line and not line.startswith(b"garbage"):
            lines[index] = line + b" label=\xff\xfe\xfa"
            break
    else:
        lines.append(b"\xff\xfe\xfa")
    return lines


def _wav_bytes(rng: random.Random, tag_bytes: int) -> tuple[bytes, float]:
    """A 16 kHz mono 16-bit PCM wav of about ``tag_bytes`` (+-10%) and its duration in seconds."""
    target = int(tag_bytes * rng.uniform(0.9, 1.1))
    nframes = max(1, (target - WAV_HEADER_BYTES) // SAMPLE_WIDTH_BYTES)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH_BYTES)
        wav.setframerate(SAMPLE_RATE_HZ)
        wav.writeframes(rng.randbytes(nframes * SAMPLE_WIDTH_BYTES))
    return buffer.getvalue(), round(nframes / SAMPLE_RATE_HZ, 3)


def _put(s3_client: Any, bucket: str, key: str, body: bytes) -> None:
    s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=_content_type(key))


def _content_type(key: str) -> str:
    return _CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")


def _report_bytes(report: Mapping[str, Any]) -> bytes:
    return (json.dumps(report, indent=2) + "\n").encode()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _stochastic_round(value: float, rng: random.Random) -> int:
    """Round up with probability equal to the fraction, so shares hold on average and exactly when whole."""
    whole = int(value)
    return whole + (1 if rng.random() < value - whole else 0)


def _iso_ms(epoch_ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def _parse_ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def _session_id(start_ms: int, vehicle_id: str) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=start_ms)
    return f"{moment:%Y%m%dT%H%M%SZ}_{vehicle_id}"


def _check_prefix(prefix: str) -> None:
    if prefix and not prefix.endswith("/"):
        raise ValueError(f"prefix must be empty or end with '/', got {prefix!r}")


def _parse_bad(text: str) -> tuple[str, ...]:
    if text == "all":
        return BAD_KINDS
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = [kind for kind in kinds if kind not in BAD_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown bad kinds {unknown}; known: all, {', '.join(BAD_KINDS)}")
    return kinds


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from err


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.generator",
        description="Write synthetic drive sessions (docs/contract.md §1) into an S3 bucket.",
    )
    parser.add_argument("--endpoint-url", help="S3 endpoint, e.g. http://127.0.0.1:8333 (default: AWS)")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="", help="empty or ending with '/'")
    parser.add_argument("--start-date", required=True, type=_parse_date, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1, help="consecutive days (default 1)")
    parser.add_argument("--sessions-per-day", type=int, default=3)
    parser.add_argument("--tags-per-session", type=int, default=5)
    parser.add_argument("--untimed-share", type=float, default=0.3)
    parser.add_argument("--unlogged-share", type=float, default=0.3)
    parser.add_argument("--bad", type=_parse_bad, default=(), help="'all' or kind1,kind2 (first day)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag-bytes", type=int, default=32 * 1024)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--vehicle-offset", type=int, default=0)
    parser.add_argument("--raw-bytes", type=int, default=None, help="size of each session's raw file")
    parser.add_argument("--create-bucket", action="store_true", help="create the bucket if missing")
    parser.add_argument("--manifest", help="write the manifest JSON to this path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _argument_parser().parse_args(argv)
    s3_client = boto3.client(
        "s3",
        endpoint_url=args.endpoint_url,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(max_pool_connections=max(10, args.workers), retries={"max_attempts": 5}),
    )
    if args.create_bucket:
        ensure_bucket(s3_client, args.bucket)
    manifest, stats = _generate(
        s3_client,
        args.bucket,
        prefix=args.prefix,
        days=[args.start_date + timedelta(days=n) for n in range(args.days)],
        sessions_per_day=args.sessions_per_day,
        tags_per_session=args.tags_per_session,
        untimed_share=args.untimed_share,
        unlogged_share=args.unlogged_share,
        bad_kinds=args.bad,
        seed=args.seed,
        tag_bytes=args.tag_bytes,
        workers=args.workers,
        vehicle_offset=args.vehicle_offset,
        raw_bytes=args.raw_bytes,
    )
    if args.manifest:
        with open(args.manifest, "w", encoding="utf-8") as out:
            out.write(manifest.to_json())
    print(f"s3://{args.bucket}/{args.prefix}: {stats.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
