"""Login throttling: exponential lockout per (email, client address) after repeated attempts.

An attempt counts when it starts, not when it fails, so a burst of parallel guesses
cannot slip past the limit while their Argon2 verifications are still running; a
successful login clears the count.

The state lives in the server database (table `login_attempts`), so every server
process sharing the database enforces ONE budget per key. Each attempt is one write
transaction that reads and updates the key's row under a lock: an
`INSERT … ON CONFLICT DO UPDATE … RETURNING` creates the row or, if it exists, locks it
(PostgreSQL: a row lock held until commit, so a concurrent attempt on the same key from
any process waits and then sees the new count; SQLite: `Database.write()` already holds
the database write lock from BEGIN). Times are wall-clock UTC from the storage clock,
because processes share no monotonic clock.

Bounded without evicting live rows (evicting would let a flood of fresh keys reset a
locked one): a row older than `forget_after_seconds` counts as absent and is reused by
its key, and every attempt that starts a count also deletes up to `SWEEP_BATCH` expired
rows of other keys, so the table holds about the keys attempted within that window.
`LoginThrottleSettings.max_tracked_keys` bounded the old in-memory table and is not
used here.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from sqlalchemy import Connection, Delete, Executable, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mo_local.server.database import Database
from mo_local.server.errors import TooManyAttempts
from mo_local.server.schema import login_attempts
from mo_local.server.settings import LoginThrottleSettings
from mo_local.server.storage import Clock, as_utc, utc_now

# Expired rows of other keys deleted by one attempt that starts a count.
SWEEP_BATCH = 100

_table = login_attempts.c


class LoginThrottle:
    """Counts login attempts in the database and refuses them with `TooManyAttempts`
    while locked out. Synchronous: the HTTP layer calls it from a thread pool."""

    def __init__(
        self, settings: LoginThrottleSettings, database: Database, *, clock: Clock = utc_now
    ) -> None:
        self._settings = settings
        self._db = database
        self._clock = clock
        self._forget = timedelta(seconds=settings.forget_after_seconds)
        self._claim = _claim_statement(database)
        self._sweep = _sweep_statement()

    def begin(self, email: str, client: str) -> None:
        """Record an attempt, or raise `TooManyAttempts` (with the wait) while locked out.

        A refused attempt changes nothing (its transaction rolls back).
        """
        key = _key(email, client)
        now = self._clock()
        with self._db.write() as conn:
            self._count(conn, key, now)

    def succeeded(self, email: str, client: str) -> None:
        """Forget the attempts of a successful login."""
        with self._db.write() as conn:
            conn.execute(delete(login_attempts).where(_table.key_sha256 == _key(email, client)))

    def _count(self, conn: Connection, key: bytes, now: datetime) -> None:
        row = conn.execute(self._claim, {"key": key, "now": now}).one()
        count: int = row.attempts
        fresh = count == 0 or now - as_utc(row.last_attempt_at) > self._forget
        if not fresh and row.locked_until is not None:
            locked_until = as_utc(row.locked_until)
            if locked_until > now:
                wait = (locked_until - now).total_seconds()
                raise TooManyAttempts(max(1, math.ceil(wait)))
        count = 1 if fresh else count + 1
        conn.execute(
            update(login_attempts)
            .where(_table.key_sha256 == key)
            .values(attempts=count, last_attempt_at=now, locked_until=self._lockout(count, now))
        )
        if fresh:
            # Only a new count can grow the table, so it pays for the clean-up.
            conn.execute(self._sweep, {"cutoff": now - self._forget})

    def _lockout(self, count: int, now: datetime) -> datetime | None:
        excess = count - self._settings.max_attempts
        if excess < 0:
            return None
        lockout = self._settings.base_lockout_seconds * (2.0 ** min(excess, 32))
        return now + timedelta(seconds=min(lockout, self._settings.max_lockout_seconds))


def _claim_statement(database: Database) -> Executable:
    """Create the key's row (count 0) or lock the existing one; return its state.

    The no-op update on conflict is what takes the row lock on PostgreSQL; on SQLite
    the surrounding write transaction already excludes every other writer.
    """
    dialect_insert = postgresql.insert if database.is_postgres else sqlite.insert
    statement = dialect_insert(login_attempts).values(
        key_sha256=bindparam("key"),
        attempts=0,
        last_attempt_at=bindparam("now"),
        locked_until=None,
    )
    return statement.on_conflict_do_update(
        index_elements=[_table.key_sha256], set_={"attempts": _table.attempts}
    ).returning(_table.attempts, _table.last_attempt_at, _table.locked_until)


def _sweep_statement() -> Delete:
    """Delete at most `SWEEP_BATCH` rows whose last attempt is before `:cutoff`.

    PostgreSQL skips rows another attempt holds locked (that attempt is resetting or
    counting the row anyway), so two sweeps never wait on each other or deadlock.
    """
    expired = (
        select(_table.key_sha256)
        .where(_table.last_attempt_at < bindparam("cutoff"))
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    return delete(login_attempts).where(_table.key_sha256.in_(expired.scalar_subquery()))


def _key(email: str, client: str) -> bytes:
    # Hashed so that neither the email nor the address is stored by the throttle.
    return hashlib.sha256(f"{email}\x00{client}".encode()).digest()
