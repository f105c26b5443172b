"""Long-poll pulls: they wait for a push and wake at once when it lands."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import StartServer
from .helpers import Api, random_record, wait_until


def waiting_pulls(base_url: str) -> float:
    """The server's gauge of pulls currently waiting for a push."""
    text = httpx.get(f"{base_url}/metrics").text
    match = re.search(r"^mo_long_polls_waiting (\S+)$", text, re.MULTILINE)
    assert match, "gauge missing"
    return float(match.group(1))


def test_long_poll_wakes_within_a_second_of_a_push(alice: Api, server: str) -> None:
    """Waiter and pusher are separate clients over real sockets on one server process
    (SQLite: the in-process signal; PostgreSQL: LISTEN/NOTIFY through the listener)."""
    store = alice.claim()
    alice.push(store, 0, [random_record()])
    waiter = Api(server, token=alice.token)
    returned_at: list[float] = []

    def long_poll() -> httpx.Response:
        response = waiter.pull(store, since=1, wait=10)
        returned_at.append(time.monotonic())
        return response

    with ThreadPoolExecutor(1) as pool, waiter:
        future = pool.submit(long_poll)
        wait_until(lambda: waiting_pulls(server) >= 1, 5, "the pull to wait")
        record = random_record()
        assert alice.push(store, 1, [record]).status_code == 200
        pushed_at = time.monotonic()
        response = future.result(timeout=15)
    assert response.status_code == 200
    assert [(r["seq"], r["event_id"]) for r in response.json()["records"]] == [(2, record[0])]
    assert returned_at[0] - pushed_at < 1.0


def test_long_poll_returns_empty_after_its_wait(alice: Api) -> None:
    store = alice.claim()
    started = time.monotonic()
    response = alice.pull(store, wait=0.3)
    elapsed = time.monotonic() - started
    assert response.json() == {"records": [], "head": 0, "has_more": False}
    assert 0.25 <= elapsed < 5


def test_wait_is_capped_by_max_wait(start_server: StartServer) -> None:
    base = start_server(max_wait_seconds=0.2)
    with Api(base) as api:
        api.signup()
        store = api.claim()
        started = time.monotonic()
        assert api.pull(store, wait=60).json()["records"] == []
        assert time.monotonic() - started < 5


def test_pull_with_records_available_does_not_wait(alice: Api) -> None:
    store = alice.claim()
    alice.push(store, 0, [random_record()])
    started = time.monotonic()
    assert len(alice.pull(store, wait=10).json()["records"]) == 1
    assert time.monotonic() - started < 5


def test_a_push_to_another_store_does_not_satisfy_the_wait(alice: Api, server: str) -> None:
    watched, other = alice.claim(), alice.claim()
    waiter = Api(server, token=alice.token)
    done = threading.Event()

    def long_poll() -> httpx.Response:
        try:
            return waiter.pull(watched, wait=10)
        finally:
            done.set()

    with ThreadPoolExecutor(1) as pool, waiter:
        future = pool.submit(long_poll)
        wait_until(lambda: waiting_pulls(server) >= 1, 5, "the pull to wait")
        alice.push(other, 0, [random_record()])
        assert not done.wait(0.5), "woke for another store's push"
        record = random_record()
        alice.push(watched, 0, [record])
        assert future.result(timeout=15).json()["records"][0]["event_id"] == record[0]
