"""A real Airflow on this machine, from the project's venv: the way Airflow teams run it without Docker.

:class:`AirflowStack` starts the Airflow 3.3 processes a deployment runs (``airflow api-server``,
``scheduler``, ``dag-processor``, ``triggerer`` and, with the CeleryExecutor, ``airflow celery worker``
processes on a Redis broker of their own), each in its own process group and logging to a file under
the stack's home, against a metadata database made for it (a PostgreSQL database on the machine's
server, or SQLite when asked). It sets every setting a native deployment needs (see
:meth:`AirflowStack.environment` and docs/running-natively.md), waits until the API server reports
every component healthy, and talks to it through the REST API (:class:`AirflowApi`, which it is:
token, trigger with a conf, wait for a run, task instances, task logs, pause/unpause; the same client
serves a stack started elsewhere, such as ``make airflow``'s). ``stop()`` leaves no process behind:
each component leads a session of its own, everything it starts stays in that session (task
processes included, though they run in process groups of their own), and ``stop()`` ends every
process of those sessions.
The tests under a real scheduler (``tests/native/``), ``make airflow`` and the benchmark build on it::

    with AirflowStack(home, env={"AIRFLOW_CONN_EVENT_INGEST_S3": ...}) as stack:
        stack.wait_for_dag("event_ingest")
        stack.unpause("event_ingest")
        run = stack.trigger("event_ingest", conf={"start_date": "2026-11-01"})
        stack.wait_for_run("event_ingest", run["dag_run_id"])

``python -m tools.airflow_local`` (``make airflow``) runs the whole demo this way: a local S3 server
seeded with the demo's sessions, an event database, the stack, the DAG unpaused; ``python -m
tools.airflow_local stop`` (``make airflow-stop``) ends it. Everything it writes stays under
``var/airflow/`` (or ``EVENT_INGEST_AIRFLOW_WORK``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

from tools.services import HOST, LocalPostgres, ServiceError, free_port

__all__ = [
    "CELERY_WORKER_SETTINGS",
    "AirflowApi",
    "AirflowApiError",
    "AirflowStack",
    "CeleryWorker",
    "StackProcess",
    "find_processes",
    "kill_processes",
    "main",
    "migrated_template",
]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = Path(sys.executable).parent / "airflow"
#: Every process of a stack inherits these two variables: they find the processes that left the
#: components' sessions (see :func:`find_processes`).
STACK_MARKER = "EVENT_INGEST_AIRFLOW_STACK"
COMPONENT_MARKER = "EVENT_INGEST_AIRFLOW_COMPONENT"
#: A Celery worker's task instances report this as their ``hostname`` (see :func:`worker_hostname`).
HOSTNAME_VARIABLE = "EVENT_INGEST_AIRFLOW_HOSTNAME"
#: The Celery settings of a CeleryExecutor stack that the compose ``celery`` profile's workers use too
#: (tests/deploy holds docker-compose.yaml to them): 2 task instances at once per worker, the
#: concurrency the Celery tests prove on 2 cores.
CELERY_WORKER_SETTINGS = {"AIRFLOW__CELERY__WORKER_CONCURRENCY": "2"}
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
_LOG_TAIL_LINES = 30
_REQUEST_ATTEMPTS = 3
_DATABASE_NAME = re.compile(r"[A-Za-z0-9_]{1,63}")


def worker_hostname() -> str:
    """The ``[core] hostname_callable`` of the stack's Celery workers: the worker's own name.

    Several workers on one machine share its host name, so without this every task instance would
    report the same ``hostname`` and nobody could tell which worker ran it. On separate machines
    (the usual deployment) the default, the machine's FQDN, already tells them apart.
    """
    return os.environ[HOSTNAME_VARIABLE]


class AirflowApiError(RuntimeError):
    """The REST API answered with an error status.

    :param status: the HTTP status code.
    :param detail: the ``detail`` of Airflow's error body (a string or a list of validation errors).
    """

    def __init__(self, method: str, path: str, status: int, detail: Any) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class CeleryWorker:
    """One ``airflow celery worker`` of a CeleryExecutor stack.

    :param name: the worker's host name: its Celery node is ``celery@<name>``, as a container's is
        ``celery@<container host name>``, and the task instances it runs report it as ``hostname``.
    :param concurrency: task instances it runs at once (``--concurrency``).
    """

    name: str
    concurrency: int = int(CELERY_WORKER_SETTINGS["AIRFLOW__CELERY__WORKER_CONCURRENCY"])

    @property
    def node(self) -> str:
        return f"celery@{self.name}"


@dataclass(frozen=True)
class StackProcess:
    """A live process of a stack, as ``ps`` would show it."""

    pid: int
    component: str
    command: str


@dataclass
class _Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None


class AirflowApi:
    """A client of a running Airflow's REST API: a JWT from the user's password (renewed once when it
    expires), reads repeated when a busy machine keeps the answer past the timeout, and the calls the
    tests, the benchmark and ``make airflow`` make.

    :param url: the API server's base URL.
    :param username: a user of its auth manager.
    :param password: that user's password.
    """

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url
        self.username = username
        self._password = password
        self._http: httpx.Client | None = None
        self._token: str | None = None

    @property
    def password(self) -> str:
        return self._password

    def close(self) -> None:
        """Close the connections; the next call opens new ones."""
        if self._http is not None:
            self._http.close()
            self._http = None
        self._token = None

    def token(self) -> str:
        """A JWT for the REST API: ``POST /auth/token`` with the user's name and password."""
        response = self._client().post(
            "/auth/token", json={"username": self.username, "password": self.password}
        )
        if response.status_code != 201:
            raise AirflowApiError("POST", "/auth/token", response.status_code, _detail(response))
        return response.json()["access_token"]

    def request(
        self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Call the REST API (``/api/v2`` + ``path``) with a token; the decoded JSON body."""
        url = f"/api/v2{path}"
        for attempt in range(1, _REQUEST_ATTEMPTS + 1):
            if self._token is None:
                self._token = self.token()
            try:
                response = self._client().request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    headers={"Authorization": f"Bearer {self._token}"},
                )
            except httpx.TransportError:
                # A busy machine can keep an answer past the timeout; only a read is safe to repeat.
                if method != "GET" or attempt == _REQUEST_ATTEMPTS:
                    raise
                time.sleep(attempt)
                continue
            if response.status_code == 401 and attempt == 1:
                self._token = None  # expired: get a new one once
                continue
            if response.status_code >= 400:
                raise AirflowApiError(method, url, response.status_code, _detail(response))
            return response.json() if response.content else None
        raise AirflowApiError(method, url, 401, "token refused twice")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id``; raise at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self.request("GET", "/importErrors")["import_errors"]
            if errors:
                raise ServiceError("DAG import errors:\n" + "\n".join(e["stack_trace"] for e in errors))
            try:
                return self.request("GET", f"/dags/{dag_id}")
            except AirflowApiError as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return self.request("PATCH", f"/dags/{dag_id}", json_body={"is_paused": paused})

    def unpause(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, False)

    def pause(self, dag_id: str) -> dict[str, Any]:
        return self.set_paused(dag_id, True)

    def trigger(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        *,
        logical_date: dt.datetime | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Trigger a run (``POST /dags/{dag_id}/dagRuns``); the new run. Params are validated here:
        a conf they refuse raises :class:`AirflowApiError` with status 400."""
        body: dict[str, Any] = {
            "conf": dict(conf or {}),
            "logical_date": logical_date.isoformat() if logical_date else None,
        }
        if run_id is not None:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json_body=body)

    def dag_runs(self, dag_id: str, **filters: Any) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first (``filters``: e.g. ``run_type="backfill"``, ``state="success"``)."""
        return self._all_pages(f"/dags/{dag_id}/dagRuns", "dag_runs", {"order_by": "run_after", **filters})

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """Wait until the run is ``success`` or ``failed``; the run. Raise on timeout, with its tasks."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                tis = self.task_instances(dag_id, run_id)
                states = sorted((ti["task_id"], ti["map_index"], ti["state"]) for ti in tis)
                raise TimeoutError(f"{dag_id} {run_id} still {run['state']} after {timeout:g} s: {states}")
            time.sleep(0.5)

    def wait_for_runs(
        self, dag_id: str, count: int, timeout: float = 180, **filters: Any
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` runs match ``filters`` (see :meth:`dag_runs`) and all have finished."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.dag_runs(dag_id, **filters)
            if len(runs) >= count and all(run["state"] in TERMINAL_RUN_STATES for run in runs):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {filters}: {[(r['dag_run_id'], r['state']) for r in runs]}")
            time.sleep(0.5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances (``task_id``, ``map_index``, ``try_number``, ``state``, ``hostname``,
        ``pid``, ``id``, ``start_date``, ``end_date``, ``duration``, ...)."""
        return self._all_pages(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances", {})

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (the earlier ones included), by try number."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        if map_index < 0:
            path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return sorted(self._all_pages(path, "task_instances", {}), key=lambda ti: ti["try_number"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The text of one try's log: a line a record (``[timestamp] level - event``), each exception
        of a record on a line of its own (``    ExceptionType: message``)."""
        body = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
        )
        content = body.get("content", [])
        if isinstance(content, str):
            return content
        lines = []
        for record in content:
            if isinstance(record, str):
                lines.append(record)
                continue
            stamp = record.get("timestamp") or ""
            level = record.get("level") or ""
            lines.append(f"[{stamp}] {level} - {record.get('event', '')}".rstrip())
            for error in record.get("error_detail") or []:
                lines.append(f"    {error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """A task instance's XCom value, as JSON (what ``XComModel`` stored)."""
        body = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index},
        )
        value = body["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=60)
        return self._http

    def _all_pages(self, path: str, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", path, params={**params, "limit": 100, "offset": len(items)})
            items += page[key]
            if not page[key] or len(items) >= page["total_entries"]:
                return items


class AirflowStack(AirflowApi):
    """Real Airflow 3.3 processes on this machine, and the REST client of their API server.

    :param home: ``AIRFLOW_HOME``: configuration, the SQLite database, ``logs/`` (task logs and one
        ``<component>.log`` per process), ``stack.env`` (the environment, to run ``airflow`` CLI
        commands against the stack by hand). Created if missing.
    :param port: the API server's port (UI, REST API, Execution API); a free one by default.
    :param executor: ``LocalExecutor`` (tasks run in processes of the scheduler) or ``CeleryExecutor``
        (tasks run on ``celery_workers``, through a Redis broker the stack starts).
    :param metadata_db: ``"postgres"`` (a database of its own on the machine's PostgreSQL server, see
        :class:`tools.services.LocalPostgres`, dropped by ``stop()``), ``"sqlite"`` (a file in
        ``home``: LocalExecutor only, and SQLite serialises writers, so a busy scheduler can hit
        "database is locked"; fine to look around, not for load or Celery), or a SQLAlchemy URL of
        an existing database (kept).
    :param metadata_template: with ``"postgres"``: a database of that server which this Airflow has
        migrated already (:func:`migrated_template`); the stack's database is a copy of it, made in
        about a second instead of a migration's 20 s and more.
    :param dags_folder: ``[core] dags_folder``; the project's ``dags/`` by default.
    :param plugins_folder: ``[core] plugins_folder``; the project's ``plugins/`` by default, which
        is what makes ``event_ingest`` importable in every Airflow process.
    :param env: more environment for every process: the DAG's ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*``,
        ``EVENT_INGEST_*`` tunables, or ``AIRFLOW__SECTION__KEY`` overrides of the settings below.
    :param celery_workers: the workers of a CeleryExecutor stack.
    :param parallelism: ``[core] parallelism``: task instances running at once per scheduler.
    :param username: the simple auth manager's admin user; its password is generated.
    :param start_timeout: seconds ``start()`` waits for every component to be healthy.
    :param stop_timeout: seconds ``stop()`` gives the processes after SIGTERM, before SIGKILL.
    """

    def __init__(
        self,
        home: str | os.PathLike[str],
        *,
        port: int | None = None,
        executor: str = "LocalExecutor",
        metadata_db: str = "postgres",
        metadata_template: str | None = None,
        dags_folder: str | os.PathLike[str] = ROOT / "dags",
        plugins_folder: str | os.PathLike[str] = ROOT / "plugins",
        env: Mapping[str, str] | None = None,
        celery_workers: Sequence[CeleryWorker] = (),
        parallelism: int = 4,
        username: str = "admin",
        start_timeout: float = 180.0,
        stop_timeout: float = 15.0,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        if executor == "CeleryExecutor" and not celery_workers:
            raise ValueError("a CeleryExecutor stack needs at least one CeleryWorker")
        if executor != "CeleryExecutor" and celery_workers:
            raise ValueError("celery_workers need executor='CeleryExecutor'")
        if len({worker.name for worker in celery_workers}) != len(celery_workers):
            raise ValueError("Celery workers need distinct names")
        if metadata_template is not None and metadata_db != "postgres":
            raise ValueError("metadata_template needs metadata_db='postgres'")
        if metadata_db == "sqlite" and executor == "CeleryExecutor":
            raise ValueError("the CeleryExecutor needs a metadata database other than SQLite")
        self.home = Path(home).resolve()
        self.port = port or free_port()
        # The password is generated when the stack starts: see the password property.
        super().__init__(f"http://{HOST}:{self.port}", username, password="")
        self.executor = executor
        self.dags_folder = Path(dags_folder).resolve()
        self.plugins_folder = Path(plugins_folder).resolve()
        self.extra_env = dict(env or {})
        self.celery_workers = tuple(celery_workers)
        self.parallelism = parallelism
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.stack_id = secrets.token_hex(6)
        self._metadata_choice = metadata_db
        self.metadata_template = metadata_template
        self._postgres: LocalPostgres | None = None
        self._database_name: str | None = None
        self.metadata_url = ""
        self.redis_port: int | None = None
        self._ports = {
            "worker_log": free_port(),
            "trigger_log": free_port(),
            "scheduler_health": free_port(),
        }
        self._secrets = {
            "jwt": secrets.token_urlsafe(32),
            "api": secrets.token_urlsafe(32),
            "fernet": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        }
        self._components: list[_Component] = []

    # -- what it runs with ---------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    @property
    def password(self) -> str:
        """The generated password of :attr:`username` (the simple auth manager's passwords file)."""
        return json.loads(self.passwords_file.read_text())[self.username]

    def environment(self) -> dict[str, str]:
        """The settings every Airflow process of the stack runs with (``AIRFLOW__SECTION__KEY``).

        The native deployment's needs, each for a reason docs/running-natively.md gives; then the
        fast loop settings that suit tests and a laptop; then ``env`` (which may override any).
        """
        settings = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": self._secrets["fernet"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"{self.url}/",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self._secrets["api"],
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets["jwt"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.log_dir),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._ports["worker_log"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._ports["trigger_log"]),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self._ports["scheduler_health"]),
            # Fast loops: a new DAG file is seen within seconds, a task process that died silently
            # (a killed worker) is failed and retried after 30 s instead of 5 minutes.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            STACK_MARKER: self.stack_id,
        }
        if self.executor == "CeleryExecutor":
            settings |= CELERY_WORKER_SETTINGS | {
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{HOST}:{self.redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
                # A worker killed after it took a task from the broker, before the task started,
                # leaves that task queued: Celery redelivers it only after the broker's visibility
                # timeout (a day), and the scheduler requeues it after task_queued_timeout (10
                # minutes by default; 2 here, checked every 15 s).
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            }
        return settings | self.extra_env

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        """Create the metadata database, migrate it, start every process, wait until all are healthy."""
        if self._components:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        try:
            self._create_metadata_db()
            if self.executor == "CeleryExecutor":
                self.redis_port = free_port()
            (self.home / "stack.env").write_text(
                "".join(f"{key}={_shell_quote(value)}\n" for key, value in sorted(self.environment().items()))
            )
            if self.metadata_template is None:
                self.cli("db", "migrate", timeout=600)
            self._write_password()
            self._launch_all()
            self.wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[StackProcess]:
        """Stop every process, drop the database made for the stack; return what had to be killed.

        SIGTERM to the process groups of the workers, scheduler, triggerer and DAG processor (a
        Celery worker's warm shutdown, the scheduler's executor ending its task processes), which may
        still report to the API server; then to the API server and Redis. SIGKILL for a group still
        there after ``stop_timeout``; at the end, SIGKILL for any process left in the components'
        sessions (task processes run in process groups of their own). Idempotent.
        """
        self.close()
        last = {"api-server", "redis"}
        self._stop_components([c for c in self._components if c.name not in last], self.stop_timeout)
        # Nothing reports to these any more: past its shutdown the API server only collects garbage.
        self._stop_components([c for c in self._components if c.name in last], min(self.stop_timeout, 5))
        killed = kill_processes(self.sessions, self.stack_id)
        self._components = []
        self._drop_metadata_db()
        return killed

    def _stop_components(self, components: list[_Component], timeout: float) -> None:
        for component in components:
            _signal_group(component.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for component in components:
            process = component.process
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.info("%s did not stop within %.0f s: SIGKILL", component.name, timeout)
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def processes(self, component: str | None = None) -> list[StackProcess]:
        """The live processes carrying the stack's marker (of one ``component``, when given)."""
        return [
            process
            for process in find_processes(self.sessions, self.stack_id)
            if component is None or process.component == component
        ]

    def kill_component(self, name: str) -> list[StackProcess]:
        """SIGKILL a component and every process it started, as a crashed machine would; return them.

        ``name`` is ``scheduler``, ``api-server``, ``dag-processor``, ``triggerer``, ``redis`` or a
        Celery worker's name. The component is not restarted.
        """
        component = self._component(name)
        if component.process is None:
            return []
        victims = kill_processes({component.process.pid: name})
        component.process.wait()
        return victims

    def task_process(self, ti_id: str) -> int | None:
        """The pid of the process running task instance ``ti_id`` (``airflow worker -- <ti_id>``)."""
        for process in self.processes():
            if process.command.startswith("airflow worker -- ") and process.command.endswith(ti_id):
                return process.pid
        return None

    def wait_until_healthy(self, timeout: float | None = None) -> None:
        """Wait until the API server reports every component healthy and every worker is ready."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        pending: Any = "no answer yet"
        while time.monotonic() < deadline:
            self._raise_if_exited()
            try:
                health = self._client().get("/api/v2/monitor/health", timeout=5).json()
            except (httpx.HTTPError, ValueError) as exc:
                pending = repr(exc)
            else:
                pending = {
                    name: part.get("status")
                    for name, part in health.items()
                    if isinstance(part, dict) and part.get("status") != "healthy"
                }
                pending |= {
                    worker.name: "not ready"
                    for worker in self.celery_workers
                    if not self._worker_ready(worker)
                }
                if not pending:
                    return
            time.sleep(0.5)
        raise ServiceError(f"Airflow not healthy after {timeout or self.start_timeout:g} s: {pending}")

    # -- the airflow CLI -----------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against the stack (same environment); output captured as text."""
        result = subprocess.run(
            [str(AIRFLOW_BIN), *args],
            env=self._process_env("cli"),
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ServiceError(
                f"airflow {' '.join(args)} exited with {result.returncode}:\n{result.stdout[-4000:]}"
                f"\n{result.stderr[-4000:]}"
            )
        return result

    def shell(
        self,
        command: str,
        component: str = "cli",
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell ``command`` in the stack's environment, the venv's ``bin`` first on ``PATH``."""
        process_env = self._process_env(component, env)
        process_env["PATH"] = f"{AIRFLOW_BIN.parent}:{process_env.get('PATH', '')}"
        return subprocess.run(
            ["/bin/sh", "-c", command],
            env=process_env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- internals -----------------------------------------------------------------------------------

    def _create_metadata_db(self) -> None:
        choice = self._metadata_choice
        if choice == "postgres":
            self._postgres = LocalPostgres()
            self._postgres.probe()
            self._database_name = f"airflow_{self.stack_id}"
            if self.metadata_template is None:
                self._postgres.create_database(self._database_name)
            else:
                _copy_database(self._postgres, self.metadata_template, self._database_name)
            self.metadata_url = self._postgres.sqlalchemy_url(self._database_name)
        elif choice == "sqlite":
            self.metadata_url = f"sqlite:///{self.home / 'airflow.db'}"
        else:
            self.metadata_url = choice

    def _drop_metadata_db(self) -> None:
        if self._postgres is not None and self._database_name is not None:
            self._postgres.drop_database(self._database_name)
        self._postgres = self._database_name = None

    def _write_password(self) -> None:
        """Write the admin's password before the API server starts, so it never prints one."""
        if not self.passwords_file.exists():
            self.passwords_file.write_text(json.dumps({self.username: secrets.token_urlsafe(12)}) + "\n")
            self.passwords_file.chmod(0o600)

    def _launch_all(self) -> None:
        airflow = str(AIRFLOW_BIN)
        if self.executor == "CeleryExecutor":
            redis_dir = self.home / "redis"
            redis_dir.mkdir(exist_ok=True)
            self._launch(
                "redis",
                [
                    _which("redis-server", "apt-get install redis-server"),
                    "--port", str(self.redis_port),
                    "--bind", HOST,
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(redis_dir),
                ],
            )  # fmt: skip
        self._launch("api-server", [airflow, "api-server"])
        # No log servers: they listen on every interface, and on one machine the API server reads
        # the task logs from the shared log folder anyway.
        self._launch("scheduler", [airflow, "scheduler", "--skip-serve-logs"])
        self._launch("dag-processor", [airflow, "dag-processor"])
        self._launch("triggerer", [airflow, "triggerer", "--skip-serve-logs"])
        for worker in self.celery_workers:
            self._launch(
                worker.name,
                [
                    airflow, "celery", "worker",
                    "--celery-hostname", worker.node,
                    "--concurrency", str(worker.concurrency),
                    "--without-mingle", "--without-gossip", "--skip-serve-logs",
                ],
                {
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                    HOSTNAME_VARIABLE: worker.name,
                    "PYTHONPATH": str(ROOT),
                },
            )  # fmt: skip

    def _launch(self, name: str, argv: list[str], extra: Mapping[str, str] | None = None) -> None:
        component = _Component(name, argv, self._process_env(name, extra), self.log_dir / f"{name}.log")
        with component.log_path.open("ab") as output:
            component.process = subprocess.Popen(
                argv,
                env=component.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._components.append(component)

    def _process_env(self, component: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # Nothing Airflow-related leaks in from the caller (a test process has its own AIRFLOW_HOME).
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        return inherited | self.environment() | dict(extra or {}) | {COMPONENT_MARKER: component}

    def _component(self, name: str) -> _Component:
        for component in self._components:
            if component.name == name:
                return component
        raise KeyError(f"no component {name!r}: {[c.name for c in self._components]}")

    def _raise_if_exited(self) -> None:
        for name, log_path in self.exited().items():
            raise ServiceError(f"{name} exited; {log_path}:\n{_tail(log_path)}")

    def _worker_ready(self, worker: CeleryWorker) -> bool:
        path = self._component(worker.name).log_path
        return path.exists() and f"{worker.node} ready." in path.read_text(errors="replace")

    @property
    def metadata_database(self) -> str | None:
        """The PostgreSQL database made for the stack (dropped by ``stop()``), if any."""
        return self._database_name

    def exited(self) -> dict[str, Path]:
        """Components whose process has ended, with their log file."""
        return {
            c.name: c.log_path
            for c in self._components
            if c.process is not None and c.process.poll() is not None
        }

    @property
    def sessions(self) -> dict[int, str]:
        """Session id -> component, of every process started (each leads a session of its own)."""
        return {c.process.pid: c.name for c in self._components if c.process is not None}


@contextlib.contextmanager
def migrated_template(home: str | os.PathLike[str]) -> Iterator[str]:
    """A database on the local PostgreSQL server, migrated once by ``airflow db migrate``, that stacks
    copy (``metadata_template``) instead of migrating their own; dropped afterwards.

    :param home: an ``AIRFLOW_HOME`` for the migration (it writes nothing else there).
    """
    postgres = LocalPostgres()
    postgres.probe()
    name = f"airflow_template_{secrets.token_hex(6)}"
    postgres.create_database(name)
    try:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env |= {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.sqlalchemy_url(name),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        result = subprocess.run(
            [str(AIRFLOW_BIN), "db", "migrate"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"airflow db migrate exited with {result.returncode}:\n{result.stdout[-4000:]}"
            )
        yield name
    finally:
        postgres.drop_database(name)


def _copy_database(postgres: LocalPostgres, template: str, name: str) -> None:
    for database in (template, name):
        if not _DATABASE_NAME.fullmatch(database):
            raise ValueError(f"database name must be 1 to 63 of [A-Za-z0-9_], got {database!r}")
    with postgres.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def find_processes(sessions: Mapping[int, str], stack_id: str | None = None) -> list[StackProcess]:
    """Live processes (not zombies) of the sessions ``sessions`` (session id -> component name).

    Each component is started as the leader of a session of its own, and everything it starts stays
    in that session (task processes move to process groups of their own, not to other sessions).
    A process that starts a session of its own (a ``BashOperator`` command) is found by the
    ``STACK_MARKER=stack_id`` in its environment, when given. The environment alone would not do:
    ``setproctitle`` (Celery, the task runner) overwrites what ``/proc/PID/environ`` shows.
    """
    marker = f"{STACK_MARKER}={stack_id}".encode() if stack_id else None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state, _ppid, _pgrp, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            component = sessions.get(int(session))
            if component is None and marker is not None:
                environ = (entry / "environ").read_bytes().split(b"\0")
                if marker in environ:
                    prefix = COMPONENT_MARKER.encode() + b"="
                    component = next(
                        (v[len(prefix) :].decode() for v in environ if v.startswith(prefix)), "?"
                    )
            if component is None or state == "Z":
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone, or not ours to read
            continue
        found.append(StackProcess(int(entry.name), component, command))
    return found


def kill_processes(sessions: Mapping[int, str], stack_id: str | None = None) -> list[StackProcess]:
    """SIGKILL every process :func:`find_processes` finds, until none is left; return them."""
    killed: list[StackProcess] = []
    for _ in range(50):  # a dying parent may still fork: go round until none is left
        left = find_processes(sessions, stack_id)
        if not left:
            return killed
        for process in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        killed += [process for process in left if process not in killed]
        time.sleep(0.1)
    raise ServiceError(f"processes survive SIGKILL: {left}")


def _signal_group(process: subprocess.Popen[bytes] | None, signum: int) -> None:
    # Only a process not yet reaped: its pid (and group id) cannot have been reused.
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except ValueError:
        return response.text


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _which(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise ServiceError(f"`{name}` not found: {hint}")
    return found


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


# -- make airflow / make airflow-stop -------------------------------------------------------------------

#: Everything ``make airflow`` writes: its S3 server's data, Airflow's home and logs, the event data.
WORK = Path(os.environ.get("EVENT_INGEST_AIRFLOW_WORK") or ROOT / "var" / "airflow")
STATE_FILE = WORK / "state.json"
DEMO_BUCKET = "drive-sessions"
DEMO_DAYS = 7


def _demo_days() -> list[dt.date]:
    """The week before today: the scheduled run made on unpause loads the last three days (its day
    and the look-back), a range triggered from the UI loads any of the others."""
    today = dt.datetime.now(dt.UTC).date()
    return [today - dt.timedelta(days=n) for n in range(DEMO_DAYS, 0, -1)]


def _metadata_db_choice() -> tuple[str, str]:
    """``EVENT_INGEST_AIRFLOW_DB`` (a SQLAlchemy URL), else the local PostgreSQL, else SQLite."""
    if url := os.environ.get("EVENT_INGEST_AIRFLOW_DB"):
        return url, "EVENT_INGEST_AIRFLOW_DB"
    try:
        LocalPostgres().probe()
    except ServiceError as exc:
        return "sqlite", f"SQLite in var/airflow/home: no PostgreSQL ({exc}); one task at a time is safest"
    return "postgres", "a database of its own on the local PostgreSQL server"


def _running_controller() -> dict[str, Any] | None:
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(state["controller_pid"], 0)
    except ProcessLookupError:
        return None
    return state


def _serve() -> int:
    """``make airflow``: local S3 seeded with the demo, an event database, the stack; until stopped."""
    from include import generator
    from tools.services import SeaweedS3

    if (state := _running_controller()) is not None:
        print(f"Airflow already runs at {state['url']} (pid {state['controller_pid']}): make airflow-stop")
        return 1
    _stop_leftovers()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    metadata_db, metadata_note = _metadata_db_choice()
    started = time.monotonic()
    s3 = SeaweedS3(base_dir=WORK)
    stack: AirflowStack | None = None
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        s3.start()
        client = s3.client(max_pool_connections=32)  # the generator uploads 16 sessions at once
        generator.ensure_bucket(client, DEMO_BUCKET)
        days = _demo_days()
        manifest = generator.generate_bucket(
            client,
            DEMO_BUCKET,
            days=days,
            sessions_per_day=5,
            tags_per_session=5,
            bad_kinds=generator.BAD_KINDS,
            seed=42,
        )
        env = {
            "AIRFLOW_CONN_EVENT_INGEST_S3": s3.airflow_conn_json(),
            "AIRFLOW_VAR_EVENT_INGEST_BUCKET": DEMO_BUCKET,
            "AIRFLOW_VAR_EVENT_INGEST_DATA_DIR": str(WORK / "data"),
        }
        event_db = os.environ.get("EVENT_INGEST_DB")
        if event_db:
            env["AIRFLOW_CONN_EVENT_INGEST_DB"] = event_db
        stack = AirflowStack(WORK / "home", port=port, metadata_db=metadata_db, env=env)
        _write_state(stack, s3)
        print(f"Starting Airflow ({metadata_note}); logs in {stack.log_dir} ...", flush=True)
        stack.start()
        _write_state(stack, s3)
        stack.wait_for_dag("event_ingest")
        stack.unpause("event_ingest")
        print(
            f"""
Airflow {_airflow_version()} is up in {time.monotonic() - started:.0f} s (LocalExecutor).
  UI and REST API  {stack.url}   login: {stack.username} / {stack.password}
  local S3         {s3.endpoint_url}  bucket {DEMO_BUCKET}: {len(manifest.sessions)} sessions over \
{days[0]}..{days[-1]}
  event database   {event_db or f"embedded SQLite in {WORK / 'data'}"}
  data directory   {WORK / "data"}
The DAG event_ingest is unpaused: its scheduled run loads {days[-3]}..{days[-1]}. To load the others,
trigger it from the UI with start_date {days[0]} and end_date {days[3]}, or backfill them:
  set -a; . {stack.home / "stack.env"}; set +a     # the airflow CLI, against this stack
  .venv/bin/airflow backfill create --dag-id event_ingest --from-date {days[0]} --to-date {days[3]}
Stop: Ctrl-C here, or make airflow-stop.""",
            flush=True,
        )
        while True:
            time.sleep(5)
            for name, log_path in stack.exited().items():
                print(f"{name} exited (see {log_path}): stopping", flush=True)
                return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        if stack is not None:
            stack.stop()
        s3.stop()
        STATE_FILE.unlink(missing_ok=True)
        print("Stopped: no process of it is left.", flush=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _write_state(stack: AirflowStack, s3: Any) -> None:
    sessions = {str(pid): name for pid, name in stack.sessions.items()}
    if s3.pid is not None:
        sessions[str(s3.pid)] = "seaweedfs"
    state = {
        "controller_pid": os.getpid(),
        "url": stack.url,
        "stack_id": stack.stack_id,
        "sessions": sessions,
        "metadata_database": stack.metadata_database,
    }
    STATE_FILE.write_text(json.dumps(state, indent=2) + "\n")


def _stop_leftovers() -> list[StackProcess]:
    """What a controller that died (SIGKILL) left: its processes, its metadata database."""
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return []
    killed = kill_processes({int(pid): name for pid, name in state["sessions"].items()}, state["stack_id"])
    if state.get("metadata_database"):
        LocalPostgres().drop_database(state["metadata_database"])
    STATE_FILE.unlink(missing_ok=True)
    return killed


def _stop() -> int:
    """``make airflow-stop``: ask the running ``make airflow`` to stop, then make sure of it."""
    state = _running_controller()
    if state is not None:
        os.kill(state["controller_pid"], signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _running_controller() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
    killed = _stop_leftovers()
    if state is None and not killed:
        print("No Airflow of make airflow is running.")
    else:
        print(f"Stopped{f' (killed {len(killed)} leftover processes)' if killed else ''}: nothing is left.")
    return 0


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.airflow_local",
        description="A local Airflow on the demo data (make airflow); `stop` ends it (make airflow-stop).",
    )
    parser.add_argument("command", nargs="?", choices=["up", "stop"], default="up")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _stop() if args.command == "stop" else _serve()


if __name__ == "__main__":
    sys.exit(main())
