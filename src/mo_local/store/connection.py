"""Opening the SQLite file safely, and turning sqlite3 errors into store errors.

The file is checked before SQLite touches it (magic header, truncation) so that a
damaged or foreign file yields StoreCorrupt instead of a confusing error later.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from mo_local.store.errors import (
    ImmutableEvent,
    MalformedRow,
    StoreBusy,
    StoreCorrupt,
    StoreError,
)

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_HEADER_SIZE: Final = 100
BUSY_TIMEOUT_MS: Final = 5000

# Primary result codes (the low byte of extended codes), from sqlite3.h.
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_CORRUPT: Final = 11
_SQLITE_TOOBIG: Final = 18
_SQLITE_CONSTRAINT: Final = 19
_SQLITE_NOTADB: Final = 26

INV001_MARKER: Final = "INV-001"


def wal_path(path: Path) -> Path:
    """The write-ahead log SQLite keeps next to the database."""
    return path.with_name(path.name + "-wal")


def check_file(path: Path) -> None:
    """Refuse a file that is not SQLite or is visibly truncated, without letting SQLite read it."""
    try:
        size = path.stat().st_size
        if size == 0:
            # A fresh file, or one whose first transaction still lives in the WAL.
            return
        with path.open("rb") as f:
            header = f.read(_HEADER_SIZE)
    except OSError as exc:
        raise StoreError(f"cannot read the store file {path}: {exc.strerror}") from None
    if len(header) < _HEADER_SIZE:
        raise StoreCorrupt(path, "truncated header")
    if header[:16] != SQLITE_MAGIC:
        raise StoreCorrupt(path, "not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    if page_size == 1:
        page_size = 65536
    change_counter = int.from_bytes(header[24:28], "big")
    page_count = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    wal = wal_path(path)
    wal_empty = not wal.exists() or wal.stat().st_size == 0
    # Only trust the in-header page count when SQLite says it is valid and no WAL
    # is waiting to be replayed (a crash during a checkpoint may legitimately
    # leave the main file short until recovery).
    if wal_empty and page_count > 0 and change_counter == valid_for:
        if size < page_count * page_size:
            raise StoreCorrupt(path, "truncated file")


def translate(exc: sqlite3.Error, path: Path) -> StoreError:
    """Map an sqlite3 error to the store error a caller can act on."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(exc)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreCorrupt(path)
    if primary == _SQLITE_TOOBIG:
        # Every value the store writes is bounded far below SQLite's length limit, so
        # a value "too big" can only come from a damaged cell claiming a huge size.
        return StoreCorrupt(path, "oversized value")
    if isinstance(exc, sqlite3.OperationalError) and message.startswith("Could not decode"):
        # Raised by the sqlite3 module itself for non-UTF-8 TEXT: only damage does that.
        return StoreCorrupt(path, "malformed text column")
    if primary == _SQLITE_CONSTRAINT and message.startswith(INV001_MARKER):
        return ImmutableEvent(message)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreBusy(None)
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return StoreError(f"store operation failed on {path} ({name})")


@contextmanager
def guard(path: Path) -> Iterator[None]:
    """Translate sqlite3 errors raised in the block; never chain the original (may quote data)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
    except MalformedRow:
        raise StoreCorrupt(path, "malformed row") from None
    except UnicodeDecodeError:
        # sqlite3 decodes SQLite's own messages, which quote a damaged schema verbatim.
        raise StoreCorrupt(path, "undecodable text") from None


def _create_private_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open the database file with the store's PRAGMAs; the caller already holds the lock."""
    if create:
        # SQLite gives the -wal and -shm files the mode of the database file.
        _create_private_file(path)
    check_file(path)
    with guard(path):
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        with guard(path):
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"cannot put the store file {path} in WAL mode")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # Extra b-tree sanity checks as pages are read: damage surfaces as
            # SQLITE_CORRUPT instead of odd results.
            conn.execute("PRAGMA cell_size_check=ON")
    except BaseException:
        conn.close()
        raise
    return conn
