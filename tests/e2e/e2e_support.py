"""End-to-end helpers: real `mo-server run` processes and real `mo` processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A `mo-server run` child process on loopback, logging at DEBUG into a file."""

    database_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / "mo-server"), "run", "--database", self.database_url,
             "--port", str(self.port), "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, f"mo-server exited:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mo-server did not become healthy"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Run:
    """One `mo` run."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> object:
        return json.loads(self.stdout)


@dataclass
class Device:
    """A home driven through `mo`, with its own secrets; every run is recorded."""

    home: Path
    passphrase: str
    account_password: str
    email: str
    runs: list[Run] = field(default_factory=list)

    def __call__(self, *args: str, **env: str) -> Run:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MO_")}
        base.update({"MO_HOME": str(self.home), "MO_PASSPHRASE": self.passphrase,
                     "MO_NEW_PASSPHRASE": self.passphrase,
                     "MO_ACCOUNT_PASSWORD": self.account_password,
                     "MO_LOG_LEVEL": "DEBUG", **env})
        done = subprocess.run([str(BIN / "mo"), *args], env=base, capture_output=True,
                              text=True, timeout=180, stdin=subprocess.DEVNULL, check=False)
        run = Run(args, done.returncode, done.stdout, done.stderr)
        self.runs.append(run)
        return run

    def ok(self, *args: str, **env: str) -> object:
        run = self(*args, "--json", **env)
        assert run.code == 0, f"mo {' '.join(args[:2])} exited {run.code}: {run.stderr}"
        return run.json

    def init(self) -> dict[str, object]:
        doc = self.ok("init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1")
        assert isinstance(doc, dict)
        return doc

    def views(self) -> tuple[object, object]:
        return self.ok("goal", "list", "--all"), self.ok("project", "list", "--all")

    def output(self) -> str:
        return "\n".join(r.stdout + r.stderr for r in self.runs)


def build_scenario(device: Device, canary: str) -> dict[str, str]:
    """Goals, a linked project with milestones, completion: returns the ids."""
    goal = device.ok("goal", "add", f"{canary} goal summary", "--slice", "health",
                     "--priority", "must", "--month", "2027-04")
    other = device.ok("goal", "add", f"{canary} second goal", "--slice", "money",
                      "--priority", "maybe", "--month", "2027-10")
    assert isinstance(goal, dict) and isinstance(other, dict)
    project = device.ok("project", "add", f"{canary} project name", "--start", "2027-01-01",
                        "--target", "2027-04-01", "--description", f"{canary} description",
                        "--goal", str(goal["id"]))
    assert isinstance(project, dict)
    milestone = device.ok("milestone", "add", str(project["id"]), f"{canary} milestone",
                          "--date", "2027-02-01")
    assert isinstance(milestone, dict)
    device.ok("project", "status", str(project["id"]), "completed")
    return {"goal": str(goal["id"]), "other": str(other["id"]),
            "project": str(project["id"]), "milestone": str(milestone["id"])}
