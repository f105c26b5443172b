"""Helpers for sync tests: a real server on a loopback socket, real stores, real crypto."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from mo_local.client import Client
from mo_local.crypto.kdf import KdfParams
from mo_local.eventlog import Envelope
from mo_local.server.app import create_app
from mo_local.server.migrate import upgrade
from mo_local.server.settings import PasswordHashing, ServerSettings
from mo_local.store.records import StoredEvent
from mo_local.sync import session
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.engine import SyncEngine
from mo_local.sync.transport import Transport

FAST_KDF = KdfParams(8192, 1, 1)
PASSPHRASE = "correct horse battery staple"
PASSWORD = "account-password-1234"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@dataclass
class RunningServer:
    """A sync server on 127.0.0.1 serving a SQLite database in tmp_path."""

    url: str
    db_path: Path
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def snapshot(self, target: Path) -> None:
        """A consistent copy of the server database (SQLite backup API)."""
        with sqlite3.connect(self.db_path) as src, sqlite3.connect(target) as dst:
            src.backup(dst)

    def restore(self, source: Path) -> None:
        """Replace the live server database's content with an older copy."""
        with sqlite3.connect(source) as src, sqlite3.connect(self.db_path) as dst:
            src.backup(dst)

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run SQL directly on the server database (tampering, inspection)."""
        with sqlite3.connect(self.db_path) as conn:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
        return rows


def start_server(db_path: Path) -> RunningServer:
    """Migrate a SQLite database and serve it on a free loopback port in a thread."""
    url = f"sqlite:///{db_path}"
    upgrade(url)
    settings = ServerSettings(
        database_url=url,
        password_hashing=PasswordHashing(time_cost=1, memory_kib=8192, parallelism=1),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it a pre-bound socket answers ~40 ms late
    # (Nagle against delayed ACKs).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive())
    assert server.started, "the sync server did not start"
    return RunningServer(f"http://127.0.0.1:{port}", db_path, server, thread)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per test module; tests use fresh accounts and stores on it."""
    running = start_server(tmp_path_factory.mktemp("server") / "server.db")
    yield running
    running.stop()


@dataclass
class Device:
    """One device: its client (unlocked), a transport to the server, and its engine."""

    client: Client
    transport: Transport
    email: str
    remote_events: list[int] = field(default_factory=list)

    def engine(self, transport: object | None = None, **options: object) -> SyncEngine:
        """A sync engine over this device's (or another, e.g. fault-injecting) transport."""
        used = transport if transport is not None else self.transport
        options.setdefault("retry", RetryPolicy(attempts=3, sleep=lambda _s: None))
        return SyncEngine(self.client.store, self.client.log, used,  # type: ignore[arg-type]
                          self.client.store_id, lambda: self.remote_events.append(1),
                          **options)  # type: ignore[arg-type]

    def sync(self) -> session.SyncRound:
        """One full sync round through the session API."""
        return session.sync_once(self.client, self.transport,
                                 lambda: self.remote_events.append(1),
                                 RetryPolicy(attempts=3, sleep=lambda _s: None))

    def append(self, aggregate_id: str, count: int = 1, tag: str = "e") -> list[StoredEvent]:
        """Append `count` raw envelopes to one aggregate."""
        return append_events(self.client, aggregate_id, count, tag)

    def events(self) -> list[tuple[str, int, str]]:
        """(aggregate id, version, event id) of every event, sorted."""
        return event_triples(self.client)

    def close(self) -> None:
        """Release the store and the HTTP client."""
        self.transport.close()
        self.client.close()


def envelope(tag: str, device_id: str = "dev") -> Envelope:
    """A simple raw envelope (the domain layer is not needed to test sync)."""
    return Envelope(event_type="TestHappened", payload_version=1, data={"tag": tag},
                    occurred_at="2026-01-01T00:00:00Z", actor="tester", device_id=device_id)


def append_events(client: Client, aggregate_id: str, count: int, tag: str) -> list[StoredEvent]:
    """Append envelopes at the aggregate's current version."""
    version = client.store.current_version(aggregate_id)
    return client.log.append("goal", aggregate_id, version,
                             [envelope(f"{tag}{i}", client.device_id) for i in range(count)])


def event_triples(client: Client) -> list[tuple[str, int, str]]:
    """Every event's (aggregate id, version, event id), sorted."""
    return sorted((e.aggregate_id, e.version, e.event_id)
                  for e in client.store.read_commit_order() if e.kind == "event")


def new_email() -> str:
    """A fresh account email."""
    return f"user-{uuid.uuid4().hex[:10]}@example.org"


@pytest.fixture
def make_device(
    tmp_path: Path, server: RunningServer
) -> Iterator[Callable[..., Device]]:
    """Factory: a new store that signed up (or joined) on the module's server."""
    devices: list[Device] = []

    def make(join_from: Device | None = None, email: str | None = None,
             signup: bool = True) -> Device:
        home = tmp_path / f"device{len(devices) + 1}"
        transport = Transport(server.url)
        if join_from is not None:
            client, _ = session.join(
                transport, join_from.email, PASSWORD,
                lambda header: Client.create_from_header(home, header, PASSPHRASE),
            )
            device = Device(client, transport, join_from.email)
        else:
            client, _recovery = Client.create(home, PASSPHRASE, FAST_KDF)
            device = Device(client, transport, email or new_email())
            if signup:
                session.signup(client, transport, device.email, PASSWORD)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.close()
