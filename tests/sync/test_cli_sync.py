"""`mo remote|sync|join` through real processes: `mo` subprocesses against a `mo-server run`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent
PASSPHRASE = "tests: sync passphrase 41c9"
ACCOUNT_PASSWORD = "tests: account password 9d2e"
MO = [str(BIN / "mo")]


@dataclass
class Result:
    """One `mo` run."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, object]:
        doc = json.loads(self.stdout)
        assert isinstance(doc, dict)
        return doc


@dataclass
class Mo:
    """`mo` on one home, secrets from the environment."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, **extra_env: str) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MO_")}
        env.update({"MO_HOME": str(self.home), "MO_PASSPHRASE": PASSPHRASE,
                    "MO_NEW_PASSPHRASE": PASSPHRASE, "MO_ACCOUNT_PASSWORD": ACCOUNT_PASSWORD,
                    **self.env, **extra_env})
        done = subprocess.run([*MO, *args], env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **extra_env: str) -> dict[str, object]:
        result = self(*args, "--json", **extra_env)
        assert result.code == 0, f"mo {args[:2]} exited {result.code}: {result.stderr}"
        return result.json

    def goals(self) -> list[str]:
        result = self("goal", "list", "--json")
        assert result.code == 0, result.stderr
        return sorted(g["summary"] for g in json.loads(result.stdout))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """`mo-server run` on a SQLite file and a loopback port."""

    db: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MO_")}
        self.process = subprocess.Popen(
            [str(BIN / "mo-server"), "run", "--database", f"sqlite:///{self.db}",
             "--port", str(self.port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, "mo-server exited during start-up"
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mo-server did not become healthy"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
            self.process = None


@pytest.fixture
def mo_server(tmp_path: Path) -> Iterator[ServerProcess]:
    if shutil.which("mo-server", path=str(BIN)) is None:
        pytest.fail("mo-server is not installed in the virtualenv")
    server = ServerProcess(tmp_path / "server.db", free_port())
    server.start()
    yield server
    server.stop()


def test_cli_signup_sync_join_status_reset_logout(mo_server: ServerProcess,
                                                  tmp_path: Path) -> None:
    one, two = Mo(tmp_path / "one"), Mo(tmp_path / "two")
    one.ok("init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1")
    one.ok("goal", "add", "Run a marathon", "--slice", "Health", "--priority", "must",
           "--month", "2026-10")

    assert one.ok("remote", "status", MO_PASSPHRASE="") == {
        "url": None, "account_id": None, "logged_in": False}
    signed = one.ok("remote", "signup", mo_server.url, "--email", "cli@example.org")
    assert set(signed) == {"account_id", "url"}
    assert signed["url"] == mo_server.url
    status = one.ok("remote", "status", MO_PASSPHRASE="")  # no passphrase needed
    assert status == {"url": mo_server.url, "account_id": signed["account_id"],
                      "logged_in": True}

    synced = one.ok("sync")
    assert set(synced) == {"pushed", "pulled", "head", "conflicts"}
    assert synced["pushed"] == 1 and synced["pulled"] == 0 and synced["conflicts"] == 0

    joined = two.ok("join", mo_server.url, "--email", "cli@example.org")
    assert joined["store_id"] == one.ok("status", MO_PASSPHRASE="")["store_id"]
    assert joined["events"] == 1
    assert two.goals() == ["Run a marathon"]
    assert two("join", mo_server.url, "--email", "cli@example.org").code == 5  # home has one

    two.ok("goal", "add", "Learn Portuguese", "--slice", "Learning", "--priority", "should",
           "--month", "2027-01")
    assert two.ok("sync")["pushed"] == 1
    back = one.ok("sync", "--watch", "--rounds", "1", "--wait", "0")
    assert back["pulled"] == 1
    assert one.goals() == two.goals() == ["Learn Portuguese", "Run a marathon"]

    # The server is restored from an older copy: sync refuses, reset re-pushes.
    backup = tmp_path / "server-backup.db"
    with sqlite3.connect(mo_server.db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    one.ok("goal", "add", "Sleep eight hours", "--slice", "Health", "--priority", "maybe",
           "--month", "2026-12")
    one.ok("sync")
    mo_server.stop()
    with sqlite3.connect(backup) as src, sqlite3.connect(mo_server.db) as dst:
        src.backup(dst)
    mo_server.start()
    behind = one("sync", "--json")
    assert behind.code == 5
    assert "server_behind" in behind.stderr
    assert json.loads(behind.stderr)["error"]["code"] == "server_behind"
    plain = one("sync")
    assert plain.code == 5 and "server_behind" in plain.stderr and "mo sync reset" in plain.stderr
    reset = one.ok("sync", "reset", MO_PASSPHRASE="")
    assert reset["pending"] == int(str(one.ok("status", MO_PASSPHRASE="")["events"]))
    assert one.ok("sync")["pushed"] == 1  # the backup held the first two goals
    two.ok("sync")
    assert two.goals() == one.goals()

    assert one.ok("remote", "logout") == {"ok": True}
    assert one.ok("remote", "status", MO_PASSPHRASE="")["logged_in"] is False
    refused = one("sync", "--json")
    assert refused.code == 6
    assert ACCOUNT_PASSWORD not in refused.stderr + refused.stdout


def test_cli_wrong_account_password_and_unreachable_server(tmp_path: Path) -> None:
    one = Mo(tmp_path / "one")
    one.ok("init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1")
    down = one("remote", "login", f"http://127.0.0.1:{free_port()}", "--email", "x@example.org",
               "--json")
    assert down.code == 8
    assert json.loads(down.stderr)["error"]["code"] == "remote_unreachable"
    assert ACCOUNT_PASSWORD not in down.stderr
    bad_url = one("remote", "login", "ftp://example.org", "--email", "x@example.org")
    assert bad_url.code == 2
