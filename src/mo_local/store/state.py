"""Side tables next to the log: meta, sync state, derived caches, idempotency, conflicts.

Values are opaque to the store. Keys and names are plaintext, so callers use
fixed names (never domain text) and encrypt every value that is not public.
"""

from __future__ import annotations

import sqlite3

from mo_local.store.errors import InvalidArgument, MalformedRow, StoreError
from mo_local.store.records import Cursor
from mo_local.store.schema import SCHEMA_VERSION_KEY

_RESERVED_META = frozenset({SCHEMA_VERSION_KEY})


def _blob(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise MalformedRow("expected a BLOB")
    return value


def _get(conn: sqlite3.Connection, table: str, key: str) -> bytes | None:
    row = conn.execute(f"SELECT value FROM {table} WHERE key = ?", (key,)).fetchone()  # noqa: S608
    return _blob(row[0]) if row is not None else None


def _put(conn: sqlite3.Connection, table: str, key: str, value: bytes) -> None:
    conn.execute(
        f"INSERT INTO {table} (key, value) VALUES (?, ?)"  # noqa: S608 - table is ours
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def get_meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    """A meta value (store id, device id, vault header…)."""
    return _get(conn, "meta", key)


def set_meta(conn: sqlite3.Connection, key: str, value: bytes) -> None:
    """Set a meta value; the schema version is the migrations' business only."""
    if key in _RESERVED_META:
        raise InvalidArgument(f"meta key {key!r} is reserved")
    _put(conn, "meta", key, value)


def get_sync_state(conn: sqlite3.Connection, key: str) -> bytes | None:
    """A sync state value (cursor, last head, server identity…)."""
    return _get(conn, "sync_state", key)


def set_sync_state(conn: sqlite3.Connection, key: str, value: bytes | None) -> None:
    """Set a sync state value; None deletes it."""
    if value is None:
        conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))
    else:
        _put(conn, "sync_state", key, value)


def load_derived(conn: sqlite3.Connection, name: str, scope: str) -> tuple[Cursor, bytes] | None:
    """A derived cache blob and the effective-order cursor it was built up to."""
    row = conn.execute(
        "SELECT synced_cursor, committed_cursor, blob FROM derived WHERE name = ? AND scope = ?",
        (name, scope),
    ).fetchone()
    if row is None:
        return None
    synced, committed, blob = row
    if not (isinstance(synced, int) and isinstance(committed, int)):
        raise MalformedRow("derived cursor is not an integer pair")
    return Cursor(synced=synced, committed=committed), _blob(blob)


def save_derived(
    conn: sqlite3.Connection, name: str, scope: str, cursor: Cursor, blob: bytes
) -> None:
    """Replace a derived cache blob and its cursor."""
    conn.execute(
        "INSERT INTO derived (name, scope, synced_cursor, committed_cursor, blob)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, scope) DO UPDATE SET"
        " synced_cursor = excluded.synced_cursor, committed_cursor = excluded.committed_cursor,"
        " blob = excluded.blob",
        (name, scope, cursor.synced, cursor.committed, blob),
    )


def clear_derived(conn: sqlite3.Connection) -> None:
    """Drop every derived cache (they are rebuilt from the log)."""
    conn.execute("DELETE FROM derived")


def get_idempotency(conn: sqlite3.Connection, key: bytes) -> tuple[bytes, bytes] | None:
    """(fingerprint, result) recorded under an idempotency key."""
    row = conn.execute(
        "SELECT fingerprint, result FROM idempotency WHERE key = ?", (key,)
    ).fetchone()
    return (_blob(row[0]), _blob(row[1])) if row is not None else None


def put_idempotency(
    conn: sqlite3.Connection, key: bytes, fingerprint: bytes, result: bytes
) -> None:
    """Record the first result of an idempotency key; a second record is refused."""
    exists = conn.execute("SELECT 1 FROM idempotency WHERE key = ?", (key,)).fetchone()
    if exists is not None:
        raise StoreError("this idempotency key already has a recorded result")
    conn.execute(
        "INSERT INTO idempotency (key, fingerprint, result) VALUES (?, ?, ?)",
        (key, fingerprint, result),
    )


def add_conflict(conn: sqlite3.Connection, blob: bytes) -> int:
    """Record an (encrypted) conflict; returns its id."""
    cursor = conn.execute("INSERT INTO conflicts (blob) VALUES (?)", (blob,))
    if cursor.lastrowid is None:
        raise StoreError("the database did not report a conflict id")
    return cursor.lastrowid


def conflicts(conn: sqlite3.Connection) -> list[bytes]:
    """Every recorded conflict blob, oldest first."""
    return [_blob(row[0]) for row in conn.execute("SELECT blob FROM conflicts ORDER BY id")]


def clear_conflicts(conn: sqlite3.Connection) -> None:
    """Forget every recorded conflict (they are recomputed with derived state)."""
    conn.execute("DELETE FROM conflicts")
