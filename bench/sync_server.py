"""Sync server benchmark: push/pull throughput, concurrent push latency, a trivial-endpoint
baseline on the same stack, and resident memory — on SQLite and on PostgreSQL.

Prints figures; never asserts on absolute times. The server runs in its own process
(this script re-invoked with `--serve`), built by `create_app` plus one bench-only
route, `POST /bench/sink`, that reads the body and answers `{}`. The concurrency test
runs its clients in processes of their own (this script re-invoked with `--client`),
so client work never shares an interpreter lock with the measurement; each client
alternates a single-record push with the same body POSTed to the sink, so both
latencies are measured under the same load, through the same minimal keep-alive HTTP
client (`KeepAliveClient`: the load generator shares this machine's cores, so it
should cost as little CPU as it can). Each client's first `WARMUP_PAIRS` pairs are
not counted. All of it shares this machine's cores.

    .venv/bin/python bench/sync_server.py [--records 50000] [--backend sqlite|postgres|both]

With `MO_BENCH_PROFILE=DIR` (and py-spy installed in the venv; it is not a project
dependency) the server process is sampled during the concurrency test.
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
# Pairs each client sends before measuring, all clients at once: the server opens its
# pooled database connections on the first concurrent requests (one-time costs).
WARMUP_PAIRS = 5


def serve(database_url: str, port: int) -> None:
    """Child process: the real app plus a trivial sink route, on uvicorn — started the way
    `mo-server run` starts (migrations in a child process, allocator tuned, the startup
    heap frozen)."""
    import uvicorn

    from mo_local.server import PasswordHashing, ServerSettings, create_app
    from mo_local.server.allocator import freeze_startup_heap, release_large_buffers
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
    freeze_startup_heap()
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


class KeepAliveClient:
    """The load generator's HTTP/1.1 client: one keep-alive connection, requests written
    and responses read with a few lines of code (status line, headers, a body of
    `Content-Length` bytes).

    Why not httpx here: its per-request work costs ~0.45 ms of CPU (measured on this
    machine), so 16 client processes used about twice the server's CPU per request, on
    the same two cores, and the concurrency figures measured mostly the load generator.
    This client costs ~0.05 ms. Pushes and sink requests go through the same client, so
    the baseline stays comparable.
    """

    def __init__(self, base: str) -> None:
        import socket
        from urllib.parse import urlsplit

        url = urlsplit(base)
        assert url.hostname is not None and url.port is not None
        self._socket = socket.create_connection((url.hostname, url.port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host = url.netloc.encode()
        self._buffer = b""

    def post(self, path: str, document: object, token: str | None = None) -> bytes:
        """POST `document` as JSON; the response body; `SystemExit` unless the status is 2xx."""
        return self.request("POST", path, json.dumps(document).encode(), token)

    def request(self, method: str, path: str, body: bytes, token: str | None) -> bytes:
        """One request on the kept-alive connection; the body of a 2xx response."""
        head = [
            f"{method} {path} HTTP/1.1".encode(),
            b"Host: " + self._host,
            b"Content-Type: application/json",
            b"Content-Length: " + str(len(body)).encode(),
        ]
        if token is not None:
            head.append(b"Authorization: Bearer " + token.encode())
        self._socket.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        end = self._fill_until(b"\r\n\r\n")
        status_line, *header_lines = self._buffer[:end].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = -1
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise SystemExit("bench client: chunked responses are not supported")
        if length < 0:
            raise SystemExit("bench client: response without Content-Length")
        start = end + 4
        while len(self._buffer) < start + length:
            self._receive()
        payload = self._buffer[start : start + length]
        self._buffer = self._buffer[start + length :]
        if not 200 <= status < 300:
            raise SystemExit(f"bench client: {method} {path} answered {status}")
        return payload

    def close(self) -> None:
        """Close the connection."""
        self._socket.close()

    def _fill_until(self, marker: bytes) -> int:
        while (found := self._buffer.find(marker)) < 0:
            self._receive()
        return found

    def _receive(self) -> None:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise SystemExit("bench client: the server closed the connection")
        self._buffer += chunk


def run_client(base: str, pushes: int) -> None:
    """Child process: one client of the concurrency test, in a process of its own.

    Claims its own store, warms its connection up, prints `ready`, waits for a line
    on stdin, then alternates a single-record push with the same body POSTed to the
    sink, and prints both latency lists (and its own CPU time) as one JSON line; the
    first `WARMUP_PAIRS` pairs are not counted.
    Every push must answer 2xx with the head moved by one.
    """
    token = os.environ["MO_BENCH_TOKEN"]
    client = KeepAliveClient(base)
    store = str(uuid.uuid4())
    client.request("PUT", f"/v1/stores/{store}", b"", token)
    client.post("/bench/sink", {})
    # Every body is made before the clock starts: only the round trips are measured.
    bodies = [
        json.dumps({"expected_head": n, "records": _records(1)}).encode()
        for n in range(WARMUP_PAIRS + pushes)
    ]
    print("ready", flush=True)
    sys.stdin.readline()
    push_latencies: list[float] = []
    sink_latencies: list[float] = []
    cpu_started = time.process_time()
    for n, body in enumerate(bodies):
        if n == WARMUP_PAIRS:
            push_latencies.clear()
            sink_latencies.clear()
            cpu_started = time.process_time()
        started = time.perf_counter()
        answer = client.request("POST", f"/v1/stores/{store}/push", body, token)
        push_latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.request("POST", "/bench/sink", body, None)
        sink_latencies.append(time.perf_counter() - started)
        if json.loads(answer)["head"] != n + 1:
            raise SystemExit("bench client: the push did not move the head")
    cpu = time.process_time() - cpu_started
    client.close()
    print(json.dumps({"push": push_latencies, "sink": sink_latencies, "cpu": cpu}), flush=True)


def concurrent_latencies(base: str, token: str) -> tuple[list[float], list[float], float]:
    """Push and sink latencies of CLIENTS client processes running at the same time, and
    the CPU seconds the clients used while measuring."""
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
        client_cpu = 0.0
        for client in clients:
            assert client.stdout is not None
            measured = json.loads(client.stdout.readline())
            pushes.extend(measured["push"])
            sinks.extend(measured["sink"])
            client_cpu += measured["cpu"]
        return pushes, sinks, client_cpu
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
            client.wait(timeout=30)


@contextmanager
def sampled(pid: int, label: str) -> Iterator[None]:
    """With `MO_BENCH_PROFILE=DIR` set (and py-spy installed; it is not a dependency),
    sample the server process during the concurrency test into DIR/<label>.txt as
    collapsed stacks, for finding where its CPU goes. Otherwise nothing."""
    directory = os.environ.get("MO_BENCH_PROFILE")
    if not directory:
        yield
        return
    out = Path(directory) / f"{label.lower()}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    options = ["--format", "raw", "--rate", "250", "--nonblocking", "--output", str(out)]
    sampler = subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let the sampler attach
    try:
        yield
    finally:
        sampler.send_signal(2)  # SIGINT: py-spy writes its file and exits
        sampler.wait(timeout=30)


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
        with sampled(pid, label):
            latencies, sink_latencies, client_cpu = concurrent_latencies(base, token)
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
    served = len(latencies) + CLIENTS * WARMUP_PAIRS  # the server also served the warm-up
    print(
        f"       server CPU {server_cpu / served * 1e6:.0f} us per push+sink pair "
        f"({len(latencies)} pairs measured; the client processes, on the same cores, "
        f"used {client_cpu / len(latencies) * 1e6:.0f} us per pair)"
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
