"""INV-009 with real client engines (issue 4 acceptance 3).

Two `mo-server` processes on one PostgreSQL database; eight devices, each a real
client (own SQLite store, own sync engine over a real socket), split across the
two processes, add goals concurrently and sync. The server's sequences are exactly
1..N with no gap or duplicate, and every device converges to the same read model.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import psycopg
from e2e_support import Server

from mo_local.app import commands as c
from mo_local.app.queries import ListGoals
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF
from mo_local.sync import session
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.transport import Transport

DEVICES = 8
GOALS_PER_DEVICE = 6
PASSPHRASE = "multiprocess passphrase"
PASSWORD = "multiprocess account password"
T = TypeVar("T")


def test_inv009_eight_real_clients_two_server_processes_postgres(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    """INV-009: gapless 1..N across two server processes; all eight devices converge."""
    servers = [Server(fresh_postgres_url, tmp_path / f"server{i}.log").start() for i in (0, 1)]
    # A SQLite store belongs to the thread that opened it: one worker thread per device.
    lanes = [ThreadPoolExecutor(max_workers=1) for _ in range(DEVICES)]
    clients: list[Client | None] = [None] * DEVICES
    email = f"mp-{uuid.uuid4().hex[:8]}@example.org"
    retry = RetryPolicy(attempts=8, base_seconds=0.01, cap_seconds=0.3)

    def on(index: int, job: Callable[[Client], T]) -> T:
        def run() -> T:
            client = clients[index]
            assert client is not None
            return job(client)
        return lanes[index].submit(run).result(timeout=300)

    def url(index: int) -> str:
        return servers[index % 2].url

    def create_first() -> None:
        first, _ = Client.create(tmp_path / "dev0", PASSPHRASE, MINIMUM_KDF)
        with Transport(url(0)) as transport:
            session.signup(first, transport, email, PASSWORD)
            session.sync_once(first, transport)
        clients[0] = first

    def join(index: int) -> None:
        with Transport(url(index)) as transport:
            joined, _ = session.join(
                transport, email, PASSWORD,
                lambda header: Client.create_from_header(tmp_path / f"dev{index}", header,
                                                         PASSPHRASE))
        joined.rebuild()
        clients[index] = joined

    def sync(index: int) -> Callable[[Client], int]:
        def job(client: Client) -> int:
            with Transport(url(index)) as transport:
                session.login(client, transport, email, PASSWORD)
                result = session.sync_once(client, transport, client.refresh, retry).result
            client.refresh()
            return result.pushed + result.pulled
        return job

    try:
        lanes[0].submit(create_first).result(timeout=120)
        for index in range(1, DEVICES):
            lanes[index].submit(join, index).result(timeout=120)
        barrier = threading.Barrier(DEVICES)

        def work(index: int) -> Callable[[Client], None]:
            def job(client: Client) -> None:
                with Transport(url(index)) as transport:
                    session.login(client, transport, email, PASSWORD)
                    barrier.wait(timeout=60)
                    for n in range(GOALS_PER_DEVICE):
                        client.execute(c.CreateGoal(
                            **client.command_base(None, None, client.new_id()),
                            summary=f"device {index} goal {n}", slice="work",
                            priority="must", target_month="2027-03"))
                        session.sync_once(client, transport, client.refresh, retry)
            return job

        futures = [lanes[i].submit(lambda i=i: work(i)(clients[i])) for i in range(DEVICES)]
        for future in futures:
            future.result(timeout=300)

        for _ in range(4):  # final rounds until nothing moves anywhere
            if sum(on(i, sync(i)) for i in range(DEVICES)) == 0:
                break
        views = [on(i, lambda cl: [g.to_json() for g in cl.list_goals(ListGoals())])
                 for i in range(DEVICES)]
        assert len(views[0]) == DEVICES * GOALS_PER_DEVICE
        assert all(v == views[0] for v in views)
        assert all(on(i, lambda cl: cl.store.count_pending()) == 0 for i in range(DEVICES))

        with psycopg.connect(fresh_postgres_url) as conn:
            seqs = [row[0] for row in conn.execute("SELECT seq FROM records ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) == DEVICES * GOALS_PER_DEVICE * 2  # a key record + an event per goal
    finally:
        for index in range(DEVICES):
            if clients[index] is not None:
                on(index, lambda cl: cl.close())
            lanes[index].shutdown()
        for server in servers:
            server.stop()
