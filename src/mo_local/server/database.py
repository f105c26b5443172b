"""The engine and the two kinds of transaction the server uses: a write and a read snapshot.

SQLite: WAL, `synchronous=FULL` (an acknowledged push survives a power cut), a busy
timeout, and writers serialised twice — by a lock inside the process (fair and
cheap) and by `BEGIN IMMEDIATE` across processes (the file's write lock is taken
before anything is read, so a read-then-write never upgrades into a deadlock).
PostgreSQL: psycopg 3; a write locks what it needs explicitly (`FOR UPDATE`) and a
read snapshot runs at REPEATABLE READ.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from mo_local.server.settings import backend_name, sqlalchemy_url

_BEGIN_OPTION = "mo_sqlite_begin"
_ENGINE_LOGGER = "sqlalchemy.engine.Engine"
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE"}


class Database:
    """One SQLAlchemy engine plus write and snapshot transactions with the right locking."""

    def __init__(self, database_url: str, *, sqlite_busy_timeout_ms: int = 10_000) -> None:
        self.url = sqlalchemy_url(database_url)
        self.backend: Literal["sqlite", "postgresql"] = backend_name(self.url)
        self._write_lock = threading.Lock()
        _never_log_result_rows()
        if self.backend == "sqlite":
            self.engine = _sqlite_engine(self.url, sqlite_busy_timeout_ms)
        else:
            self.engine = create_engine(
                self.url,
                hide_parameters=True,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=10,
            )

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
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose reads all see one consistent snapshot."""
        with self.engine.connect() as conn:
            if self.is_postgres:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


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


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
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
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
