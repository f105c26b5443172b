"""Login throttle policy with a controlled clock: lockout, exponential growth, reset, bounds.

The throttle keeps its state in the server database, so every test runs on SQLite and
on PostgreSQL (a database of its own: the bounds test counts the whole table), and two
throttles on two `Database` objects — as two server processes would have — share one
budget.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mo_local.server import LoginThrottleSettings
from mo_local.server.database import Database
from mo_local.server.errors import TooManyAttempts
from mo_local.server.migrate import upgrade
from mo_local.server.schema import login_attempts
from mo_local.server.throttle import SWEEP_BATCH, LoginThrottle


class Clock:
    """A wall clock the test moves by hand (UTC, like the storage clock)."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def throttle_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated database of this test alone: a SQLite file or a PostgreSQL one."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'throttle.db'}"
    upgrade(url)
    return url


@pytest.fixture
def databases(throttle_db_url: str) -> Iterator[list[Database]]:
    """Two `Database` objects on the one test database, like two server processes."""
    made = [Database(throttle_db_url), Database(throttle_db_url)]
    yield made
    for database in made:
        database.dispose()


def _settings(**overrides: float) -> LoginThrottleSettings:
    return LoginThrottleSettings(
        max_attempts=3, base_lockout_seconds=2, max_lockout_seconds=30, **overrides
    )


def _throttle(database: Database, clock: Clock, **overrides: float) -> LoginThrottle:
    return LoginThrottle(_settings(**overrides), database, clock=clock)


def _rows(database: Database) -> int:
    with database.snapshot() as conn:
        count: int = conn.execute(select(func.count()).select_from(login_attempts)).scalar_one()
    return count


def test_lockout_grows_exponentially_and_is_capped(databases: list[Database]) -> None:
    clock = Clock()
    throttle = _throttle(databases[0], clock)
    for _ in range(3):
        throttle.begin("a@b.c", "1.2.3.4")
    waits = []
    for _ in range(6):
        with pytest.raises(TooManyAttempts) as locked:
            throttle.begin("a@b.c", "1.2.3.4")
        wait = int(locked.value.headers["Retry-After"])
        waits.append(wait)
        clock.advance(wait)
        throttle.begin("a@b.c", "1.2.3.4")  # allowed after the wait, and fails again
    assert waits == [2, 4, 8, 16, 30, 30]


def test_retry_after_rounds_the_remaining_wait_up(databases: list[Database]) -> None:
    clock = Clock()
    throttle = _throttle(databases[0], clock)
    for _ in range(3):
        throttle.begin("a@b.c", "ip")
    clock.advance(0.25)
    with pytest.raises(TooManyAttempts) as locked:
        throttle.begin("a@b.c", "ip")
    assert locked.value.headers["Retry-After"] == "2"  # 1.75 s left
    clock.advance(1.5)
    with pytest.raises(TooManyAttempts) as locked:
        throttle.begin("a@b.c", "ip")
    assert locked.value.headers["Retry-After"] == "1"  # never 0


def test_success_clears_and_keys_are_per_email_and_client(databases: list[Database]) -> None:
    clock = Clock()
    throttle = _throttle(databases[0], clock)
    for _ in range(3):
        throttle.begin("a@b.c", "1.2.3.4")
    with pytest.raises(TooManyAttempts):
        throttle.begin("a@b.c", "1.2.3.4")
    throttle.begin("a@b.c", "5.6.7.8")
    throttle.begin("other@b.c", "1.2.3.4")
    clock.advance(2)
    throttle.begin("a@b.c", "1.2.3.4")
    throttle.succeeded("a@b.c", "1.2.3.4")
    for _ in range(3):
        throttle.begin("a@b.c", "1.2.3.4")


def test_old_attempts_are_forgotten(databases: list[Database]) -> None:
    clock = Clock()
    throttle = _throttle(databases[0], clock, forget_after_seconds=60)
    for _ in range(2):
        throttle.begin("a@b.c", "ip")
    clock.advance(61)
    for _ in range(3):
        throttle.begin("a@b.c", "ip")  # the count started over
    with pytest.raises(TooManyAttempts):
        throttle.begin("a@b.c", "ip")


def test_expired_rows_are_deleted_in_bounded_batches(databases: list[Database]) -> None:
    """The table does not grow forever: each attempt that starts a count deletes up to
    `SWEEP_BATCH` rows older than `forget_after_seconds`; recent rows are kept."""
    database = databases[0]
    clock = Clock()
    throttle = _throttle(database, clock, forget_after_seconds=60)
    old = 2 * SWEEP_BATCH + SWEEP_BATCH // 2
    for n in range(old):
        throttle.begin(f"user{n}@b.c", "ip")
    assert _rows(database) == old
    clock.advance(30)
    throttle.begin("recent@b.c", "ip")  # nothing expired yet
    assert _rows(database) == old + 1
    clock.advance(31)  # the first rows are now 61 s old, "recent" 31 s
    for fresh in range(1, 4):
        throttle.begin(f"new{fresh}@b.c", "ip")
        expected_old = max(0, old - fresh * SWEEP_BATCH)
        assert _rows(database) == expected_old + 1 + fresh
    # Counting on an existing key does not sweep (only new counts can grow the table).
    throttle.begin("recent@b.c", "ip")
    assert _rows(database) == 1 + 3


def test_rows_hold_only_the_digest_of_email_and_client(databases: list[Database]) -> None:
    database = databases[0]
    throttle = _throttle(database, Clock())
    throttle.begin("private.person@example.test", "203.0.113.7")
    with database.snapshot() as conn:
        rows = conn.execute(select(login_attempts)).all()
    assert len(rows) == 1
    expected = hashlib.sha256(b"private.person@example.test\x00203.0.113.7").digest()
    assert bytes(rows[0].key_sha256) == expected
    assert rows[0].attempts == 1
    assert b"private.person" not in repr(tuple(rows[0])).encode()


def test_two_throttles_on_one_database_share_one_budget(databases: list[Database]) -> None:
    """Two processes (two `Database` objects) count into one budget: alternating attempts
    lock out after `max_attempts` in total, and a success through one clears the other."""
    clock = Clock()
    first, second = (_throttle(database, clock) for database in databases)
    first.begin("a@b.c", "ip")
    second.begin("a@b.c", "ip")
    first.begin("a@b.c", "ip")
    for throttle in (second, first):  # each has seen only one or two attempts itself
        with pytest.raises(TooManyAttempts) as locked:
            throttle.begin("a@b.c", "ip")
        assert locked.value.headers["Retry-After"] == "2"
    clock.advance(2)
    second.begin("a@b.c", "ip")  # the 4th attempt: locked out for 4 s on both
    with pytest.raises(TooManyAttempts) as locked:
        first.begin("a@b.c", "ip")
    assert locked.value.headers["Retry-After"] == "4"
    clock.advance(4)
    second.begin("a@b.c", "ip")
    second.succeeded("a@b.c", "ip")
    for throttle in (first, second, first):
        throttle.begin("a@b.c", "ip")
    with pytest.raises(TooManyAttempts):
        second.begin("a@b.c", "ip")


def test_parallel_attempts_from_two_processes_never_exceed_the_budget(
    databases: list[Database],
) -> None:
    """Many attempts at once on one key, through two `Database` objects: exactly
    `max_attempts` are let through, whatever the interleaving."""
    clock = Clock()
    throttles = [
        LoginThrottle(LoginThrottleSettings(max_attempts=5), database, clock=clock)
        for database in databases
    ]
    attempts = 24
    start = threading.Barrier(attempts)

    def attempt(index: int) -> bool:
        start.wait(timeout=30)
        try:
            throttles[index % 2].begin("a@b.c", "ip")
        except TooManyAttempts:
            return False
        return True

    with ThreadPoolExecutor(attempts) as pool:
        allowed = list(pool.map(attempt, range(attempts)))
    assert allowed.count(True) == 5
    with databases[1].snapshot() as conn:
        assert conn.execute(select(login_attempts.c.attempts)).scalar_one() == 5
