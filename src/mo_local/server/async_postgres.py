"""One-statement units of work on PostgreSQL, awaited on the event loop.

The hot paths (push, pull) are each ONE statement in autocommit mode — a push is one
`CALL mo_push(…)` (migrations 0002, 0003), which authenticates, locks, checks, appends,
moves the head, commits and then notifies; a pull is one query, so it reads one
snapshot. One statement needs no worker thread: it is sent and awaited on the event
loop with psycopg's async connection, so a push costs one round trip to PostgreSQL
and no thread hand-over. (Before: a pool checkout with a ping, a pipelined read, an
append and a COMMIT — four round trips — each ending with a worker thread waiting to
win the GIL back from the busy event loop; that is where latency piled up under
concurrency.)

`AsyncPostgres` is the small pool of those connections: at most `max_connections`
in use at once, idle ones kept for reuse. A reused connection that turns out to be
dead (the server restarted, a proxy dropped it) is replaced and the statement sent
once more on a fresh one: both statements are safe to repeat (a push is idempotent
by event id, a pull only reads). The pool belongs to one event loop at a time; when
it is used from another loop (a test client that starts a loop per request), the
connections of the old loop are closed and new ones opened.

Errors surface as SQLAlchemy's exception types (`OperationalError` → 503 and so on),
exactly as on the synchronous paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, StatementError

if TYPE_CHECKING:
    import psycopg

DEFAULT_MAX_CONNECTIONS = 4  # see `ServerSettings.postgres_connections`

Row = tuple[Any, ...]


@dataclass
class _LoopState:
    """The connections of one event loop."""

    loop: asyncio.AbstractEventLoop
    slots: asyncio.Semaphore
    idle: list[psycopg.AsyncConnection[Row]] = field(default_factory=list)


class AsyncPostgres:
    """A pool of autocommit psycopg async connections for one-statement units of work."""

    def __init__(self, conninfo: str, *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        import psycopg  # only PostgreSQL servers load the driver

        self._psycopg = psycopg
        self._conninfo = conninfo
        self._max = max_connections
        self._state: _LoopState | None = None

    async def fetch(self, statement: str, params: Sequence[object]) -> list[Row]:
        """Every row of one statement, run in its own transaction; results in binary."""
        try:
            return await self._fetch(statement, params)
        except self._psycopg.Error as exc:
            raise sqlalchemy_error(exc) from exc

    async def aclose(self) -> None:
        """Close the idle connections (connections in use are closed when returned)."""
        state, self._state = self._state, None
        if state is not None:
            await _close_all(state.idle)

    @property
    def idle_connections(self) -> int:
        """How many open connections wait for reuse (for tests)."""
        return 0 if self._state is None else len(self._state.idle)

    async def _fetch(self, statement: str, params: Sequence[object]) -> list[Row]:
        state = await self._current_state()
        async with state.slots:
            if state.idle:
                conn = state.idle.pop()
                try:
                    return await self._run(state, conn, statement, params)
                except self._psycopg.OperationalError:
                    if not conn.broken:
                        raise
                    # A dead pooled connection: once more on a fresh one (see above).
            return await self._run(state, await self._connect(), statement, params)

    async def _run(
        self,
        state: _LoopState,
        conn: psycopg.AsyncConnection[Row],
        statement: str,
        params: Sequence[object],
    ) -> list[Row]:
        """Run the statement, then pool the connection again or close it."""
        try:
            cursor = await conn.execute(statement, params, binary=True)
            return await cursor.fetchall()
        finally:
            # Keep only a connection that is open, idle and still this pool's; one that
            # was interrupted mid-statement (cancelled request) is closed, never reused.
            if (
                state is self._state
                and not conn.closed
                and conn.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE
            ):
                state.idle.append(conn)
            else:
                await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Row]:
        return await self._psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    async def _current_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._state
        if state is not None and state.loop is loop:
            return state
        self._state = _LoopState(loop, asyncio.Semaphore(self._max))
        if state is not None:
            await _close_all(state.idle)
        return self._state


async def _close_all(connections: list[psycopg.AsyncConnection[Row]]) -> None:
    while connections:
        await connections.pop().close()


def sqlalchemy_error(exc: Exception) -> StatementError:
    """A psycopg error as the SQLAlchemy exception a Core statement would have raised, so
    it maps to the same problem responses (`OperationalError` → 503 and so on)."""
    import psycopg

    invalidated = isinstance(exc, psycopg.OperationalError)
    return DBAPIError.instance(None, None, exc, psycopg.Error, connection_invalidated=invalidated)
