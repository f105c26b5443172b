"""Several real `mo-server run` processes on one database (INV-009, cross-process long-poll,
one login throttle budget)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from mo_local.server import LoginThrottleSettings
from mo_local.server.database import Database
from mo_local.server.schema import login_attempts

from .helpers import (
    Api,
    ServerProcess,
    mo_server_processes,
    new_email,
    random_record,
    wait_until,
)
from .test_long_poll import waiting_pulls

CLIENTS = 8
BATCHES_PER_CLIENT = 15
# The database each `two_servers` pair shares, by the base URL of its first server.
_DATABASE_URLS: dict[str, str] = {}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def two_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    """Two server processes sharing one database (a SQLite file or PostgreSQL)."""
    log_dir = tmp_path_factory.mktemp("mo-server-logs")
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")  # plain postgresql:// is accepted
    else:
        url = f"sqlite:///{log_dir / 'shared.db'}"
    with mo_server_processes(url, 2, log_dir) as servers:
        _DATABASE_URLS[servers[0].base_url] = url
        yield servers


def _push_until_accepted(api: Api, store: str, batch: list[tuple[str, bytes]]) -> dict[str, int]:
    """Push a batch, pulling the head and retrying on server_ahead (as a client engine would)."""
    head = 0
    while True:
        response = api.push(store, head, batch)
        if response.status_code == 200:
            return {item["event_id"]: item["seq"] for item in response.json()["assigned"]}
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "server_ahead", response.text
        head = api.pull(store, since=head, limit=1).json()["head"]


def test_inv009_concurrent_pushes_through_two_processes_are_gapless(
    two_servers: list[ServerProcess],
) -> None:
    """INV-009: 8 clients over real sockets, alternating between two server processes on one
    database, push concurrently to one store: sequences are exactly 1..N, no gap, no duplicate,
    every record present with its bytes, and every acknowledged sequence is the stored one."""
    with Api(two_servers[0].base_url) as owner:
        owner.signup()
        store = owner.claim()
        token = owner.token
    barrier = threading.Barrier(CLIENTS)

    def client(index: int) -> tuple[dict[str, bytes], dict[str, int]]:
        rng = random.Random(index)
        sent: dict[str, bytes] = {}
        acked: dict[str, int] = {}
        with Api(two_servers[index % 2].base_url, token=token) as api:
            barrier.wait(timeout=30)
            for _ in range(BATCHES_PER_CLIENT):
                batch = [random_record(rng.randint(1, 300)) for _ in range(rng.randint(1, 3))]
                sent.update(batch)
                acked.update(_push_until_accepted(api, store, batch))
        return sent, acked

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    sent = {eid: data for part, _ in results for eid, data in part.items()}
    acked = {eid: seq for _, part in results for eid, seq in part.items()}

    with Api(two_servers[1].base_url, token=token) as reader:
        stored = reader.pull_all(store, page=100)
    assert [seq for seq, _, _ in stored] == list(range(1, len(sent) + 1))
    assert {eid: data for _, eid, data in stored} == sent
    assert {eid: seq for seq, eid, _ in stored} == acked


# On SQLite, processes share no signal: a waiter elsewhere sees the push at its periodic
# re-check, so the one-second bound is a PostgreSQL (LISTEN/NOTIFY) property.
@pytest.mark.parametrize(
    "two_servers", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_long_poll_on_one_process_wakes_for_a_push_on_another(
    two_servers: list[ServerProcess],
) -> None:
    """A pull waiting on process A returns within 1 s of a push through process B."""
    waiting_on, pushing_through = two_servers
    with Api(pushing_through.base_url) as pusher, Api(waiting_on.base_url) as waiter:
        pusher.signup()
        store = pusher.claim()
        waiter.token = pusher.token
        returned_at: list[float] = []

        def long_poll() -> httpx.Response:
            response = waiter.pull(store, wait=10)
            returned_at.append(time.monotonic())
            return response

        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(long_poll)
            wait_until(lambda: waiting_pulls(waiting_on.base_url) >= 1, 5, "the pull to wait")
            record = random_record()
            assert pusher.push(store, 0, [record]).status_code == 200
            pushed_at = time.monotonic()
            response = future.result(timeout=15)
    assert response.json()["records"][0]["event_id"] == record[0]
    assert returned_at[0] - pushed_at < 1.0


def _attempts_recorded(database_url: str, email: str) -> int | None:
    """The shared attempt count of `email` from the loopback address (None: no row)."""
    key = hashlib.sha256(f"{email}\x00127.0.0.1".encode()).digest()
    database = Database(database_url)
    try:
        with database.snapshot() as conn:
            found: int | None = conn.execute(
                select(login_attempts.c.attempts).where(login_attempts.c.key_sha256 == key)
            ).scalar_one_or_none()
            return found
    finally:
        database.dispose()


def test_wrong_passwords_alternating_between_two_processes_share_one_budget(
    two_servers: list[ServerProcess],
) -> None:
    """The login throttle counts in the shared database: wrong passwords alternating
    between two processes are refused (429) after `max_attempts` in total, where two
    per-process throttles would have let twice as many through."""
    budget = LoginThrottleSettings().max_attempts  # `mo-server run` uses the defaults (5)
    database_url = _DATABASE_URLS[two_servers[0].base_url]
    with Api(two_servers[0].base_url) as first, Api(two_servers[1].base_url) as second:
        email = new_email()
        first.signup(email)
        through = [first, second]
        statuses = [through[n % 2].login(email, f"guess-{n}").status_code for n in range(budget)]
        # The first `budget` attempts are let through (the last of them starts a lockout).
        assert statuses == [401] * budget
        # Each process saw only some of them; the one row counts them all.
        assert _attempts_recorded(database_url, email) == budget
        # From here every attempt locks the key for 1, 2, 4, 8… s, so a 429 comes long
        # before the 2 * budget attempts two separate per-process budgets would allow.
        for n in range(budget, 2 * budget):
            response = through[n % 2].login(email, f"guess-{n}")
            if response.status_code == 429:
                break
            assert response.status_code == 401, response.text
        assert response.status_code == 429, "no lockout within twice the budget"
        assert response.json()["code"] == "too_many_attempts"
        assert int(response.headers["Retry-After"]) >= 1
