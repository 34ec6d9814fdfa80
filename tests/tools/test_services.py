"""The throwaway services behave as the end-to-end and fault tests rely on."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import MySQLdb
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from tools import services
from tools.services import MariaDbServer, MotoS3, SeaweedS3, ServiceError, free_port

DISTINCTIVE_SECRET = "sw-secret-5b1e9c"


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return found


def _port_accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class TestFreePort:
    @pytest.mark.parametrize("count", [pytest.param(1, id="one"), pytest.param(5, id="run-of-five")])
    def test_returns_the_first_of_count_consecutive_free_ports(self, count: int) -> None:
        first = free_port(count)
        sockets = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", first + offset))
        finally:
            for sock in sockets:
                sock.close()

    def test_refuses_an_empty_run(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            free_port(0)


class _NeverReadySeaweedS3(SeaweedS3):
    def _probe(self) -> None:
        raise ServiceError("never ready")


class TestSeaweedS3:
    @pytest.fixture(scope="class")
    def seaweed(self) -> Iterator[SeaweedS3]:
        with SeaweedS3(secret_key=DISTINCTIVE_SECRET) as server:
            server.create_bucket("events")
            yield server

    def test_serves_objects_put_with_its_credentials(self, seaweed: SeaweedS3) -> None:
        client = seaweed.client()
        client.put_object(Bucket="events", Key="raw/2026-11-21/s1.json", Body=b'{"tag": 1}')

        body = client.get_object(Bucket="events", Key="raw/2026-11-21/s1.json")["Body"].read()

        assert body == b'{"tag": 1}'
        assert seaweed.endpoint_url.startswith("http://127.0.0.1:")

    def test_refuses_a_wrong_secret_key(self, seaweed: SeaweedS3) -> None:
        impostor = boto3.client(
            "s3",
            endpoint_url=seaweed.endpoint_url,
            aws_access_key_id=seaweed.access_key,
            aws_secret_access_key="wrong-secret",
            region_name=seaweed.region,
        )

        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            impostor.list_objects_v2(Bucket="events")

    def test_airflow_conn_json_carries_endpoint_and_credentials(self, seaweed: SeaweedS3) -> None:
        assert json.loads(seaweed.airflow_conn_json()) == {
            "conn_type": "aws",
            "login": "test",
            "password": DISTINCTIVE_SECRET,
            "extra": {"endpoint_url": seaweed.endpoint_url, "region_name": "us-east-1"},
        }

    def test_kill_then_restart_keeps_objects_on_the_same_endpoint(self, seaweed: SeaweedS3) -> None:
        client = seaweed.client(retries={"max_attempts": 1}, connect_timeout=1)
        client.put_object(Bucket="events", Key="survivor", Body=b"kept")
        endpoint, old_pid = seaweed.endpoint_url, seaweed.pid

        seaweed.kill()
        with pytest.raises(EndpointConnectionError):
            client.list_buckets()
        seaweed.restart()

        assert seaweed.endpoint_url == endpoint
        assert seaweed.pid != old_pid
        assert _process_is_gone(old_pid)
        assert client.get_object(Bucket="events", Key="survivor")["Body"].read() == b"kept"

    def test_paused_server_hangs_until_resumed(self, seaweed: SeaweedS3) -> None:
        impatient = seaweed.client(retries={"max_attempts": 1}, read_timeout=0.5)

        seaweed.pause()
        try:
            with pytest.raises(ReadTimeoutError):
                impatient.list_buckets()
        finally:
            seaweed.resume()

        # Answered once resumed; by a patient client: a loaded machine can take over 0.5 s here too.
        assert "events" in [bucket["Name"] for bucket in seaweed.client().list_buckets()["Buckets"]]

    def test_stop_leaves_no_process_and_no_files(self) -> None:
        with SeaweedS3() as server:
            pid, directory, port = server.pid, server.directory, server.s3_port
            assert pid is not None

        assert _process_is_gone(pid)
        assert not directory.exists()
        assert not _port_accepts_connections(port)
        assert not list(Path("/tmp").glob(f"seaweedfs-*-grpc-{port + 10000}.sock"))
        server.stop()  # idempotent

    def test_failed_start_leaves_no_process_and_no_files(self, tmp_path: Path) -> None:
        # A server that never passes its probe: a short timeout alone races a fast start (seen in CI:
        # the first probe, slowed by building its client, found the server already up).
        server = _NeverReadySeaweedS3(start_timeout=0.2, base_dir=tmp_path)

        with pytest.raises(ServiceError, match=r"not ready after .*server\.log"):
            server.start()

        assert not server.is_running
        assert list(tmp_path.iterdir()) == []
        assert _processes_mentioning(str(tmp_path)) == []


class TestMariaDbServer:
    @pytest.fixture(scope="class")
    def mariadb(self) -> Iterator[MariaDbServer]:
        with MariaDbServer() as server:
            server.create_database("events")
            connection = server.connect("events")
            connection.cursor().execute("CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(20))")
            connection.close()
            yield server

    def _insert_and_count(self, server: MariaDbServer, rows: list[tuple[int, str]]) -> int:
        connection = server.connect("events")
        try:
            cursor = connection.cursor()
            cursor.executemany("INSERT INTO tags (id, name) VALUES (%s, %s)", rows)
            connection.commit()
            cursor.execute("SELECT COUNT(*) FROM tags")
            return cursor.fetchone()[0]
        finally:
            connection.close()

    def _count(self, server: MariaDbServer) -> int:
        connection = server.connect("events")
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT COUNT(*) FROM tags")
            return cursor.fetchone()[0]
        finally:
            connection.close()

    def test_created_database_accepts_rows_over_tcp(self, mariadb: MariaDbServer) -> None:
        count = self._insert_and_count(mariadb, [(1, "horn"), (2, "siren")])

        assert count >= 2
        connection = mariadb.connect()
        try:
            assert connection.get_host_info().startswith("127.0.0.1 via TCP/IP")
        finally:
            connection.close()

    def test_restart_keeps_committed_rows_on_the_same_port(self, mariadb: MariaDbServer) -> None:
        before = self._insert_and_count(mariadb, [(10, "a"), (11, "b")])
        port, old_pid = mariadb.port, mariadb.pid

        mariadb.restart()

        assert mariadb.port == port
        assert _process_is_gone(old_pid)
        assert self._count(mariadb) == before

    def test_crash_keeps_committed_rows(self, mariadb: MariaDbServer) -> None:
        before = self._insert_and_count(mariadb, [(20, "c"), (21, "d")])

        mariadb.kill()
        with pytest.raises(MySQLdb.OperationalError):
            mariadb.connect(connect_timeout=1)
        mariadb.start()

        assert self._count(mariadb) == before

    def test_auth_is_real(self, mariadb: MariaDbServer) -> None:
        with pytest.raises(MySQLdb.OperationalError, match="Access denied"):
            mariadb.connect(user="nobody")

    def test_drop_database_removes_it(self, mariadb: MariaDbServer) -> None:
        mariadb.create_database("scratch")

        mariadb.drop_database("scratch")
        mariadb.drop_database("scratch")  # idempotent

        with pytest.raises(MySQLdb.OperationalError, match="Unknown database"):
            mariadb.connect("scratch")

    def test_airflow_conn_uri_names_tcp_host_port_and_database(self, mariadb: MariaDbServer) -> None:
        assert mariadb.airflow_conn_uri("events") == f"mysql://root@127.0.0.1:{mariadb.port}/events"

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("ev`; DROP DATABASE mysql; --", id="injection"),
            pytest.param("", id="empty"),
            pytest.param("a-b", id="dash"),
        ],
    )
    def test_refuses_unsafe_database_names(self, mariadb: MariaDbServer, name: str) -> None:
        with pytest.raises(ValueError, match="database name"):
            mariadb.create_database(name)

    def test_moves_to_another_port_when_its_port_is_taken(self, monkeypatch: pytest.MonkeyPatch) -> None:
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken_port = squatter.getsockname()[1]
        ports = iter([taken_port])
        real_free_port = services.free_port
        monkeypatch.setattr(services, "free_port", lambda count=1: next(ports, None) or real_free_port(count))
        try:
            with MariaDbServer() as server:
                assert server.port != taken_port
                server.connect().close()
        finally:
            squatter.close()

    def test_stop_leaves_no_process_and_no_files(self) -> None:
        with MariaDbServer() as server:
            pid, directory, port = server.pid, server.directory, server.port
            assert pid is not None

        assert _process_is_gone(pid)
        assert not directory.exists()
        assert not _port_accepts_connections(port)
        server.stop()  # idempotent

    def test_failed_start_leaves_no_process_and_no_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_command = MariaDbServer._command
        monkeypatch.setattr(MariaDbServer, "_command", lambda self: [*real_command(self), "--no-such-option"])
        server = MariaDbServer(base_dir=tmp_path)

        with pytest.raises(ServiceError, match=r"(?s)exited with code .*no-such-option"):
            server.start()

        assert not server.is_running
        assert list(tmp_path.iterdir()) == []
        assert _processes_mentioning(str(tmp_path)) == []

    def test_missing_binaries_say_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(services.shutil, "which", lambda *args, **kwargs: None)

        with pytest.raises(ServiceError, match="apt-get install mariadb-server"):
            MariaDbServer()


def _serves(server: SeaweedS3 | MariaDbServer) -> None:
    if isinstance(server, SeaweedS3):
        server.client().list_buckets()
    else:
        server.connect().close()


@pytest.mark.parametrize("server_class", [SeaweedS3, MariaDbServer], ids=["seaweedfs", "mariadb"])
def test_a_deep_directory_keeps_its_unix_sockets_short_and_stop_removes_them(
    tmp_path: Path, server_class: type[SeaweedS3 | MariaDbServer]
) -> None:
    # A socket path longer than sun_path's 108 bytes fails the bind (seen in CI: make airflow's
    # test under pytest's tmp_path on a checkout at /check/work/main).
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    sockets_before = set(Path(tempfile.gettempdir()).glob("sockets-*"))

    with server_class(base_dir=deep) as server:
        _serves(server)
        pid = server.pid
        assert pid is not None
        sockets = set(Path(tempfile.gettempdir()).glob("sockets-*")) - sockets_before
        assert sockets
        assert all(len(os.fsencode(path)) < 60 for path in sockets)

    assert _process_is_gone(pid)
    assert list(deep.iterdir()) == []
    assert not any(path.exists() for path in sockets)


class TestMotoS3:
    @pytest.fixture(scope="class")
    def moto(self) -> Iterator[MotoS3]:
        with MotoS3() as server:
            server.create_bucket("moto-support-tests")
            yield server

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("raw//s1.json", id="double-slash"),
            pytest.param("raw/../s1.json", id="dot-dot"),
            pytest.param("./s1.json", id="dot"),
        ],
    )
    def test_keeps_keys_exactly_as_given(self, moto: MotoS3, key: str) -> None:
        client = moto.client()
        client.put_object(Bucket="moto-support-tests", Key=key, Body=b"x")

        listed = client.list_objects_v2(Bucket="moto-support-tests", Prefix=key)["Contents"]

        assert [item["Key"] for item in listed] == [key]

    def test_airflow_conn_json_points_at_the_server(self, moto: MotoS3) -> None:
        extra = json.loads(moto.airflow_conn_json())["extra"]

        assert extra == {"endpoint_url": moto.endpoint_url, "region_name": "us-east-1"}

    def test_stop_closes_the_port(self) -> None:
        with MotoS3() as server:
            port = int(server.endpoint_url.rsplit(":", 1)[1])
            assert _port_accepts_connections(port)

        assert not _port_accepts_connections(port)
        server.stop()  # idempotent
