"""Wake-ups for long-polling pulls when a push lands.

`StoreSignals` is the in-process part (an asyncio event per watched store, used on
the event loop only). On PostgreSQL every push also runs `pg_notify(channel, store
id)` in its transaction, and `PostgresPushListener` — one task per process with its
own psycopg connection — turns those notifications into local signals, so a push on
one server process wakes a pull waiting on another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from uuid import UUID

_log = logging.getLogger("mo_local.server.notify")


class StoreSignals:
    """Per-store wake-up events for waiters in this process (event-loop thread only)."""

    def __init__(self) -> None:
        self._events: dict[UUID, asyncio.Event] = {}
        self._watchers: dict[UUID, int] = {}

    @contextlib.contextmanager
    def watch(self, store_id: UUID) -> Iterator[asyncio.Event]:
        """An event set by the next `notify(store_id)`; enter it BEFORE reading the store."""
        event = self._events.get(store_id)
        if event is None:
            event = self._events[store_id] = asyncio.Event()
        self._watchers[store_id] = self._watchers.get(store_id, 0) + 1
        try:
            yield event
        finally:
            remaining = self._watchers[store_id] - 1
            if remaining:
                self._watchers[store_id] = remaining
            else:
                del self._watchers[store_id]
                if self._events.get(store_id) is event:
                    del self._events[store_id]

    def notify(self, store_id: UUID) -> None:
        """Wake every current watcher of a store; later watchers get a fresh event."""
        event = self._events.pop(store_id, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        """Wake every watcher (after a gap in which notifications may have been missed)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    @property
    def watched(self) -> int:
        """How many waiters are watching (for metrics and tests)."""
        return sum(self._watchers.values())


class PostgresPushListener:
    """LISTENs on the push channel with a dedicated connection and relays to `StoreSignals`."""

    def __init__(self, conninfo: str, channel: str, signals: StoreSignals) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._signals = signals
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    async def ensure_started(self, timeout_seconds: float = 5.0) -> bool:
        """Start listening if not yet; True once LISTEN is active (waits up to the timeout)."""
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(self._ready), name="mo-push-listener")
        assert self._ready is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_seconds)
        return self._ready.is_set()

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, ready: asyncio.Event) -> None:
        import psycopg  # only PostgreSQL servers load the driver
        from psycopg import sql

        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    ready.set()
                    backoff = 0.1
                    # Pushes may have landed while we were not listening.
                    self._signals.notify_all()
                    async for notification in conn.notifies():
                        self._relay(notification.payload)
            except (psycopg.Error, OSError) as exc:
                ready.clear()
                _log.warning("push listener lost its connection error=%s", type(exc).__name__)
                self._signals.notify_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _relay(self, payload: str) -> None:
        try:
            store_id = UUID(payload)
        except ValueError:
            return
        self._signals.notify(store_id)
