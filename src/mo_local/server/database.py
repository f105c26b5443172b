"""The engine and the two kinds of transaction the server uses: a write and a read snapshot.

SQLite: WAL, `synchronous=FULL` (an acknowledged push survives a power cut), a busy
timeout, and writers serialised twice — by a lock inside the process (fair and
cheap) and by `BEGIN IMMEDIATE` across processes (the file's write lock is taken
before anything is read, so a read-then-write never upgrades into a deadlock).
PostgreSQL: psycopg 3; a write locks what it needs explicitly (`FOR UPDATE`) and a
read snapshot runs at REPEATABLE READ.

`run_write` and `run_snapshot` are how async handlers run a unit of work. On
PostgreSQL it goes to a worker thread (the hot paths, push and pull, are one statement
each and skip this: they are awaited on the event loop through `async_postgres`).
On SQLite it runs inline on the event loop whenever it cannot wait there: SQLite
work is CPU-bound and serialised anyway, so a thread hop (two wake-ups, a GIL
hand-over) costs more than the work itself. An inline unit uses a connection of its
own with busy timeout 0 and takes the in-process write lock only if it is free; when
the lock is taken or SQLite answers "busy" (another process writes), the unit —
rolled back, nothing committed — runs again in a worker thread, which waits as long
as the busy timeout allows.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeVar, cast
from uuid import UUID

from sqlalchemy import Connection, DateTime, Dialect, Engine, Uuid, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from starlette.concurrency import run_in_threadpool

from mo_local.server.async_postgres import DEFAULT_MAX_CONNECTIONS, AsyncPostgres
from mo_local.server.settings import backend_name, libpq_url, sqlalchemy_url

T = TypeVar("T")
Work = Callable[[Connection], T]

_BEGIN_OPTION = "mo_sqlite_begin"
_NO_BEGIN = "NONE"
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE", _NO_BEGIN}
_ENGINE_LOGGER = "sqlalchemy.engine.Engine"
_SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

_ToUuid = Callable[[object], UUID]
_ToTime = Callable[[object], datetime]


@dataclass(frozen=True)
class Codec:
    """Driver-level forms of ids and timestamps, for the driver-level SQL of the hot paths.

    Taken from SQLAlchemy's own type processors, so a statement written for the driver
    stores and reads exactly the values a SQLAlchemy Core statement would.
    """

    uuid: Callable[[UUID], object]
    time: Callable[[datetime], object]
    to_uuid: _ToUuid
    to_time: _ToTime
    placeholder: str

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> Codec:
        """The codec of a SQLAlchemy dialect."""
        uuid_type = Uuid(as_uuid=True).dialect_impl(dialect)
        time_type = DateTime(timezone=True).dialect_impl(dialect)
        return cls(
            uuid=uuid_type.bind_processor(dialect) or _unchanged,
            time=time_type.bind_processor(dialect) or _unchanged,
            to_uuid=cast(_ToUuid, uuid_type.result_processor(dialect, None) or _unchanged),
            to_time=cast(_ToTime, time_type.result_processor(dialect, None) or _unchanged),
            placeholder="?" if dialect.paramstyle == "qmark" else "%s",
        )

    def sql(self, statement: str) -> str:
        """A statement written with `?` placeholders, in this driver's parameter style."""
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)


def _unchanged(value: object) -> object:
    return value


class Database:
    """One SQLAlchemy engine plus write and snapshot transactions with the right locking."""

    def __init__(
        self,
        database_url: str,
        *,
        sqlite_busy_timeout_ms: int = 10_000,
        postgres_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.url = sqlalchemy_url(database_url)
        self.backend: Literal["sqlite", "postgresql"] = backend_name(self.url)
        self._write_lock = threading.Lock()
        self._inline: Engine | None = None
        # PostgreSQL only: one-statement units of work awaited on the event loop.
        self.async_postgres: AsyncPostgres | None = None
        _never_log_result_rows()
        if self.backend == "sqlite":
            self.engine = _sqlite_engine(self.url, sqlite_busy_timeout_ms)
            # The event loop's own connection: used by one thread, one unit at a time.
            self._inline = _sqlite_engine(self.url, 0, poolclass=StaticPool)
        else:
            self.engine = create_engine(
                self.url,
                hide_parameters=True,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
            )
            self.async_postgres = AsyncPostgres(
                libpq_url(database_url), max_connections=postgres_connections
            )
        self.codec = Codec.for_dialect(self.engine.dialect)

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return self.backend == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction; on SQLite it holds the database write lock from BEGIN."""
        if self.is_postgres:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, _begin(self.engine, "IMMEDIATE") as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for ONE statement, outside any explicit transaction.

        A single statement always reads one consistent snapshot, so a lookup needs no
        BEGIN/COMMIT around it (PostgreSQL: autocommit; SQLite: no BEGIN).
        """
        with self.engine.connect() as conn:
            if self.is_postgres:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                conn.execution_options(**{_BEGIN_OPTION: _NO_BEGIN})
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose reads all see one consistent snapshot."""
        if not self.is_postgres:
            with _begin(self.engine, "DEFERRED") as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    async def run_write(self, work: Work[T]) -> T:
        """Run `work` in a `write()` transaction (see the module docstring for where)."""
        if self._inline is not None and self._write_lock.acquire(blocking=False):
            try:
                with _begin(self._inline, "IMMEDIATE") as conn:
                    return work(conn)
            except OperationalError as exc:
                if not _is_busy(exc):
                    raise
            finally:
                self._write_lock.release()
        return await run_in_threadpool(self._write_in_thread, work)

    async def run_snapshot(self, work: Work[T]) -> T:
        """Run `work` in a `snapshot()` transaction (see the module docstring for where)."""
        if self._inline is not None:
            try:
                with _begin(self._inline, "DEFERRED") as conn:
                    return work(conn)
            except OperationalError as exc:
                if not _is_busy(exc):
                    raise
        return await run_in_threadpool(self._snapshot_in_thread, work)

    async def aclose(self) -> None:
        """Close the event loop's connections (PostgreSQL), then every pooled one."""
        if self.async_postgres is not None:
            await self.async_postgres.aclose()
        self.dispose()

    def dispose(self) -> None:
        """Close every pooled connection of the engines."""
        self.engine.dispose()
        if self._inline is not None:
            self._inline.dispose()

    def _write_in_thread(self, work: Work[T]) -> T:
        with self.write() as conn:
            return work(conn)

    def _snapshot_in_thread(self, work: Work[T]) -> T:
        with self.snapshot() as conn:
            return work(conn)


@contextmanager
def _begin(engine: Engine, mode: str) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_OPTION: mode})
        with conn.begin():
            yield conn


def _is_busy(exc: OperationalError) -> bool:
    """SQLite could not take a lock at once (another connection holds it)."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _SQLITE_BUSY


class _DropResultRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG lines that print result rows (record bytes, hashes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(("Row ", "Col ")))


def _never_log_result_rows() -> None:
    # `hide_parameters` covers statement parameters only; an operator who turns on
    # SQL debugging must still never see record bytes or password hashes (INV-015).
    logger = logging.getLogger(_ENGINE_LOGGER)
    if not any(isinstance(existing, _DropResultRows) for existing in logger.filters):
        logger.addFilter(_DropResultRows())


def _sqlite_engine(url: str, busy_timeout_ms: int, **options: object) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        # Every pooled connection would see a different in-memory database.
        raise ValueError("the server needs a SQLite file: sqlite:///path/to/server.db")
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        **options,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        if mode not in _BEGIN_MODES:
            raise ValueError("unknown SQLite BEGIN mode")
        if mode != _NO_BEGIN:
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
