"""`make run`: a short demonstration of MO Local on embedded defaults.

Everything happens in a temporary directory through the real `mo` and
`mo-server` commands: one device builds goals and projects, completes them and
sees its goal achieved; an embedded sync server on SQLite starts on loopback; a
second device joins with only the server URL, the account and the passphrase,
and shows the same goals and projects.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
PASSPHRASE = "correct horse battery staple, demo only"  # noqa: S105 - a throwaway demo store
ACCOUNT_PASSWORD = "demo account password"  # noqa: S105 - a throwaway demo account


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}")


def mo(home: Path, *args: str, show: bool = True) -> object:
    """Run `mo` for a person to read, then again-free: parse --json output when asked."""
    env = {
        **os.environ,
        "MO_HOME": str(home),
        "MO_PASSPHRASE": PASSPHRASE,
        "MO_NEW_PASSPHRASE": PASSPHRASE,
        "MO_ACCOUNT_PASSWORD": ACCOUNT_PASSWORD,
    }
    cmd = [str(BIN / "mo"), *args]
    if show:
        print(f"$ mo {shlex.join(args)}")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"demo step failed (exit {done.returncode}): mo {shlex.join(args)}")
    if "--json" in args:
        return json.loads(done.stdout)
    if show:
        print(done.stdout.rstrip())
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the demo server exited early")
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the demo server did not become healthy")


def one_device(home: Path) -> str:
    banner("A new store on device 1 (the recovery key is shown once)")
    mo(home, "init")

    banner("Goals across the balanced wheel")
    run = mo(
        home,
        "goal",
        "add",
        "Run a half marathon",
        "--slice",
        "health",
        "--priority",
        "must",
        "--month",
        "2027-04",
        "--json",
        show=False,
    )
    assert isinstance(run, dict)
    mo(
        home,
        "goal",
        "add",
        "Read twelve books",
        "--slice",
        "learning",
        "--priority",
        "should",
        "--month",
        "2027-12",
    )
    mo(
        home,
        "goal",
        "add",
        "Family trip to the coast",
        "--slice",
        "family",
        "--priority",
        "maybe",
        "--month",
        "2027-08",
    )
    goal_id = str(run["id"])

    banner("Projects with milestones, linked to the running goal")
    plan = mo(
        home,
        "project",
        "add",
        "Training plan",
        "--start",
        "2027-01-04",
        "--target",
        "2027-04-10",
        "--description",
        "Three runs a week, long run on Sunday",
        "--goal",
        goal_id,
        "--json",
        show=False,
    )
    shoes = mo(
        home,
        "project",
        "add",
        "Buy running shoes",
        "--start",
        "2027-01-02",
        "--target",
        "2027-01-20",
        "--goal",
        goal_id,
        "--json",
        show=False,
    )
    assert isinstance(plan, dict) and isinstance(shoes, dict)
    mo(home, "milestone", "add", str(plan["id"]), "First 10 km", "--date", "2027-02-14")
    mo(home, "milestone", "add", str(plan["id"]), "First 18 km", "--date", "2027-03-21")
    mo(home, "project", "list")

    banner("Completing both projects achieves the goal automatically")
    mo(home, "project", "status", str(shoes["id"]), "completed", "--json", show=False)
    mo(home, "project", "status", str(plan["id"]), "completed", "--json", show=False)
    mo(home, "goal", "show", goal_id)

    banner("Search (substring and prefix, ranked)")
    mo(home, "search", "marath")
    mo(home, "status")
    return goal_id


def two_devices(tmp: Path, home1: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    banner(f"An embedded sync server on SQLite at {url}")
    server = subprocess.Popen(
        [
            str(BIN / "mo-server"),
            "run",
            "--database",
            f"sqlite:///{tmp / 'server.db'}",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url, server)
        banner("Device 1 signs up and syncs")
        mo(home1, "remote", "signup", url, "--email", "demo@example.org")
        mo(home1, "sync")
        banner("Device 2 joins with the URL, the account and the passphrase")
        home2 = tmp / "device2"
        mo(home2, "join", url, "--email", "demo@example.org")
        mo(home2, "goal", "list")
        mo(home2, "project", "list")
        banner("The server holds only ciphertext it cannot read")
        stored = b"".join(p.read_bytes() for p in tmp.glob("server.db*") if p.is_file())
        for word in ("marathon", "Training plan", "GoalCreated", "Health"):
            print(
                f"  occurrences of {word!r} in the server's database files: "
                f"{stored.count(word.encode())}"
            )
        print(
            f"  ({len(stored):,} bytes scanned; the full proof is "
            "tests/e2e/test_zero_knowledge_e2e.py)"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    """Run the demonstration in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="mo-demo-") as d:
        tmp = Path(d)
        home1 = tmp / "device1"
        one_device(home1)
        if (BIN / "mo-server").exists():
            two_devices(tmp, home1)
    banner("Done: the temporary stores are deleted")


if __name__ == "__main__":
    main()
