"""Sync server benchmark: push/pull throughput, concurrent push latency, a trivial-endpoint
baseline on the same stack, and resident memory — on SQLite and on PostgreSQL.

Prints figures; never asserts on absolute times. The server runs in its own process
(this script re-invoked with `--serve`), built by `create_app` plus one bench-only
route, `POST /bench/sink`, that reads the body and answers `{}`. The concurrency test
runs its clients in processes of their own (this script re-invoked with `--client`),
so client work never shares an interpreter lock with the measurement; each client
alternates a single-record push with the same body POSTed to the sink, so both
latencies are measured under the same load. All of it shares this machine's cores.

    .venv/bin/python bench/sync_server.py [--records 50000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi import Request

ADMIN_URL = os.environ.get("MO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RECORD_BYTES = 256
BATCH = 1000
CLIENTS = 16
PUSHES_PER_CLIENT = 200


def serve(database_url: str, port: int) -> None:
    """Child process: the real app plus a trivial sink route, on uvicorn — started the way
    `mo-server run` starts (migrations in a child process, allocator tuned)."""
    import uvicorn

    from mo_local.server import PasswordHashing, ServerSettings, create_app
    from mo_local.server.allocator import release_large_buffers
    from mo_local.server.cli import migrate_in_child

    if migrate_in_child(database_url, "warning") != 0:
        raise SystemExit("migration failed")
    release_large_buffers()
    settings = ServerSettings(
        database_url=database_url,
        password_hashing=PasswordHashing(time_cost=1, memory_kib=8192, parallelism=1),
    )
    app = create_app(settings)

    async def sink(request: Request) -> dict[str, str]:
        await request.body()
        return {}

    app.add_api_route("/bench/sink", sink, methods=["POST"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server_process(database_url: str) -> Iterator[tuple[str, int]]:
    """Start the server child; yields (base URL, pid) once /v1/health answers."""
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", database_url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                raise SystemExit("server process exited")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.05)
        yield base, child.pid
    finally:
        child.terminate()
        child.wait(timeout=30)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A scratch PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"mo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident set size of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size of a process in MiB (Linux)."""
    return rss_mib(pid, "VmHWM")


def _records(count: int) -> list[dict[str, str]]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "record": base64.urlsafe_b64encode(secrets.token_bytes(RECORD_BYTES))
            .rstrip(b"=")
            .decode(),
        }
        for _ in range(count)
    ]


def _account(client: httpx.Client) -> dict[str, str]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.test"
    response = client.post("/v1/auth/signup", json={"email": email, "password": "bench password"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_client(base: str, pushes: int) -> None:
    """Child process: one client of the concurrency test, in a process of its own.

    Claims its own store, warms its connection up, prints `ready`, waits for a line
    on stdin, then alternates a single-record push with the same body POSTed to the
    sink, and prints both latency lists as one JSON line.
    """
    auth = {"Authorization": f"Bearer {os.environ['MO_BENCH_TOKEN']}"}
    with httpx.Client(base_url=base, timeout=60) as client:
        store = str(uuid.uuid4())
        client.put(f"/v1/stores/{store}", headers=auth).raise_for_status()
        client.post("/bench/sink", json={}).raise_for_status()
        print("ready", flush=True)
        sys.stdin.readline()
        push_latencies: list[float] = []
        sink_latencies: list[float] = []
        for n in range(pushes):
            body = {"expected_head": n, "records": _records(1)}
            started = time.perf_counter()
            client.post(f"/v1/stores/{store}/push", json=body, headers=auth).raise_for_status()
            push_latencies.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.post("/bench/sink", json=body).raise_for_status()
            sink_latencies.append(time.perf_counter() - started)
    print(json.dumps({"push": push_latencies, "sink": sink_latencies}), flush=True)


def concurrent_latencies(base: str, token: str) -> tuple[list[float], list[float]]:
    """Push and sink latencies of CLIENTS client processes running at the same time."""
    env = {**os.environ, "MO_BENCH_TOKEN": token}
    command = [sys.executable, __file__, "--client", base, "--pushes", str(PUSHES_PER_CLIENT)]
    clients = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(CLIENTS)
    ]
    try:
        for client in clients:
            assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        for client in clients:
            assert client.stdin is not None
            client.stdin.write("go\n")
            client.stdin.flush()
        pushes: list[float] = []
        sinks: list[float] = []
        for client in clients:
            assert client.stdout is not None
            measured = json.loads(client.stdout.readline())
            pushes.extend(measured["push"])
            sinks.extend(measured["sink"])
        return pushes, sinks
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
            client.wait(timeout=30)


def _ms(values: list[float], fraction: float) -> float:
    return _percentile(values, fraction) * 1000


def run_backend(label: str, database_url: str, total: int) -> None:
    """All measurements against one backend."""
    with server_process(database_url) as (base, pid), httpx.Client(base_url=base, timeout=60) as c:
        resident_at_start = rss_mib(pid)
        auth = _account(c)
        store = str(uuid.uuid4())
        c.put(f"/v1/stores/{store}", headers=auth).raise_for_status()
        batches = [_records(min(BATCH, total - start)) for start in range(0, total, BATCH)]

        started = time.perf_counter()
        head = 0
        for batch in batches:
            response = c.post(
                f"/v1/stores/{store}/push",
                json={"expected_head": head, "records": batch},
                headers=auth,
            )
            response.raise_for_status()
            head = response.json()["head"]
        push_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for batch in batches:
            c.post("/bench/sink", json={"expected_head": 0, "records": batch}).raise_for_status()
        sink_seconds = time.perf_counter() - started

        started = time.perf_counter()
        since, pulled = 0, 0
        while True:
            page = c.get(
                f"/v1/stores/{store}/pull", params={"since": since, "limit": BATCH}, headers=auth
            ).json()
            pulled += len(page["records"])
            if not page["has_more"]:
                break
            since = page["records"][-1]["seq"]
        pull_seconds = time.perf_counter() - started
        assert pulled == total == head

        single: list[float] = []
        single_sink: list[float] = []
        for n in range(300):
            body = {"expected_head": total + n, "records": _records(1)}
            t0 = time.perf_counter()
            c.post(f"/v1/stores/{store}/push", json=body, headers=auth).raise_for_status()
            single.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            c.post("/bench/sink", json=body).raise_for_status()
            single_sink.append(time.perf_counter() - t0)

        token = auth["Authorization"].removeprefix("Bearer ")
        cpu_before = cpu_seconds(pid)
        latencies, sink_latencies = concurrent_latencies(base, token)
        server_cpu = cpu_seconds(pid) - cpu_before
        resident, peak = rss_mib(pid), peak_rss_mib(pid)

    print(f"== {label}")
    shape = f"{total} x {RECORD_BYTES} B, batches of {BATCH}"
    print(f"push   {total / push_seconds:10.0f} records/s  ({shape})")
    print(f"sink   {total / sink_seconds:10.0f} records/s  (same bytes to a trivial endpoint)")
    print(f"       push/sink ratio {push_seconds / sink_seconds:.2f}")
    print(f"pull   {total / pull_seconds:10.0f} records/s  (pages of {BATCH})")
    print(
        f"single-record push, 1 client: p50 {_ms(single, 0.5):.2f} ms  "
        f"p99 {_ms(single, 0.99):.2f} ms  "
        f"(sink p50 {_ms(single_sink, 0.5):.2f} ms, p99 {_ms(single_sink, 0.99):.2f} ms)"
    )
    print(
        f"single-record push, {CLIENTS} client processes: p50 {_ms(latencies, 0.5):.2f} ms  "
        f"p99 {_ms(latencies, 0.99):.2f} ms  "
        f"(sink p50 {_ms(sink_latencies, 0.5):.2f} ms, p99 {_ms(sink_latencies, 0.99):.2f} ms; "
        f"push/sink p50 {_ms(latencies, 0.5) / _ms(sink_latencies, 0.5):.2f}, "
        f"p99 {_ms(latencies, 0.99) / _ms(sink_latencies, 0.99):.2f})"
    )
    print(
        f"       server CPU {server_cpu / len(latencies) * 1e6:.0f} us per push+sink pair "
        f"({len(latencies)} pairs; the client processes share the same cores)"
    )
    print(
        f"server resident memory: {resident_at_start:.0f} MiB after start, "
        f"{resident:.0f} MiB after the run (peak {peak:.0f} MiB)"
    )


def main() -> None:
    """Parse arguments and run the chosen backends."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--pushes", type=int, default=PUSHES_PER_CLIENT, help=argparse.SUPPRESS)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.client:
        run_client(args.client, args.pushes)
        return
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run_backend("SQLite", f"sqlite:///{tmp}/bench.db", args.records)
    if args.backend in ("postgres", "both"):
        try:
            with postgres_database() as url:
                run_backend("PostgreSQL", url, args.records)
        except Exception as exc:  # noqa: BLE001 - a missing PostgreSQL only skips its part
            print(f"== PostgreSQL skipped: {type(exc).__name__}")


if __name__ == "__main__":
    main()
