"""Test helpers for the sync server: a real uvicorn server in a thread, real `mo-server`
processes, and a small HTTP client that speaks the API."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from mo_local.server import Limits, LoginThrottleSettings, PasswordHashing, ServerSettings

FAST_HASHING = PasswordHashing(time_cost=1, memory_kib=8192, parallelism=1)
PASSWORD = "correct horse battery staple"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition until it holds; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def make_settings(database_url: str, **overrides: object) -> ServerSettings:
    """Settings for tests: cheap Argon2, otherwise the defaults unless overridden."""
    values: dict[str, object] = {
        "database_url": database_url,
        "password_hashing": FAST_HASHING,
        "limits": Limits(),
        "login_throttle": LoginThrottleSettings(),
        "token_ttl": timedelta(hours=1),
    }
    values.update(overrides)
    return ServerSettings(**values)  # type: ignore[arg-type]


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run an app on uvicorn over a real loopback socket; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 10, "uvicorn to start")
        assert server.started, "uvicorn failed to start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    """A currently free loopback port (for server processes that need one up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A `mo-server run` child process."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def mo_server_processes(
    database_url: str, count: int, log_dir: Path
) -> Iterator[list[ServerProcess]]:
    """Start `count` real `mo-server run` processes on one database; ready when /v1/health is."""
    started: list[ServerProcess] = []
    try:
        for index in range(count):
            port = free_port()
            log_path = log_dir / f"mo-server-{index}.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "mo_local.server.cli",
                        "run",
                        "--database",
                        database_url,
                        "--port",
                        str(port),
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "MO_SERVER_LOG_LEVEL": "info"},
                )
            started.append(ServerProcess(process, f"http://127.0.0.1:{port}", log_path))
        for server in started:
            wait_until(lambda s=server: _healthy(s), 30, f"{server.base_url} to be healthy")
        yield started
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def _healthy(server: ServerProcess) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"mo-server exited early:\n{server.log()}")
    try:
        return httpx.get(f"{server.base_url}/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def b64(data: bytes, *, padded: bool = False) -> str:
    """base64url text of bytes."""
    text = base64.urlsafe_b64encode(data).decode()
    return text if padded else text.rstrip("=")


def unb64(text: str) -> bytes:
    """Bytes of base64url text with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_email() -> str:
    """A fresh unique email (tests share one PostgreSQL database)."""
    return f"user-{uuid.uuid4().hex[:12]}@example.test"


def random_record(size: int = 48) -> tuple[str, bytes]:
    """A fresh event id and random opaque bytes."""
    return str(uuid.uuid4()), secrets.token_bytes(size)


@dataclass
class Api:
    """A thin client of the sync API over httpx (real sockets)."""

    base_url: str
    token: str | None = None
    account_id: str | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header of this client's session."""
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}"}

    def signup(self, email: str | None = None, password: str = PASSWORD) -> Api:
        """Create an account and keep its token."""
        response = self.client.post(
            "/v1/auth/signup", json={"email": email or new_email(), "password": password}
        )
        assert response.status_code == 201, response.text
        self.token = response.json()["token"]
        self.account_id = response.json()["account_id"]
        return self

    def login(self, email: str, password: str) -> httpx.Response:
        """POST /v1/auth/login."""
        return self.client.post("/v1/auth/login", json={"email": email, "password": password})

    def claim(self, store_id: str | None = None) -> str:
        """Claim a (new) store id and return it."""
        store_id = store_id or str(uuid.uuid4())
        response = self.client.put(f"/v1/stores/{store_id}", headers=self.auth)
        assert response.status_code in (200, 201), response.text
        return store_id

    def push(
        self, store_id: str, expected_head: int, records: list[tuple[str, bytes]]
    ) -> httpx.Response:
        """POST a push of (event id, bytes) pairs."""
        body = {
            "expected_head": expected_head,
            "records": [{"event_id": eid, "record": b64(data)} for eid, data in records],
        }
        return self.client.post(f"/v1/stores/{store_id}/push", json=body, headers=self.auth)

    def pull(self, store_id: str, since: int = 0, **params: object) -> httpx.Response:
        """GET a pull page."""
        query = {"since": since, **params}
        return self.client.get(f"/v1/stores/{store_id}/pull", params=query, headers=self.auth)

    def pull_all(self, store_id: str, page: int = 1000) -> list[tuple[int, str, bytes]]:
        """Every record of a store as (seq, event id, bytes), following has_more."""
        found: list[tuple[int, str, bytes]] = []
        since = 0
        while True:
            response = self.pull(store_id, since=since, limit=page)
            assert response.status_code == 200, response.text
            body = response.json()
            found += [(r["seq"], r["event_id"], unb64(r["record"])) for r in body["records"]]
            if not body["has_more"]:
                return found
            since = found[-1][0]
