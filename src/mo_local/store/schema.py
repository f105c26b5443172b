"""Schema of the local store and its numbered migrations.

Plaintext columns are limited to what ordering and concurrency need (DESIGN.md §6):
event id, kind, aggregate type and id, version, key id and sequences. Everything
else is an opaque BLOB encrypted by the caller.

Each migration is a list of single statements (not a script): `executescript`
would commit behind our back, and every migration must run inside the one
transaction that also records the new version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from typing import Final

from mo_local.store.errors import MalformedRow

SCHEMA_VERSION_KEY: Final = "schema_version"

_V1: Final[tuple[str, ...]] = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    """
    CREATE TABLE events (
        commit_seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('event', 'key')),
        aggregate_type TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 0),
        key_id TEXT NOT NULL,
        record BLOB NOT NULL,
        CHECK ((kind = 'key' AND version = 0) OR (kind = 'event' AND version >= 1))
    )
    """,
    "CREATE UNIQUE INDEX events_aggregate_version ON events (aggregate_id, version)"
    " WHERE kind = 'event'",
    # Lets key records be listed (to install DEKs) without scanning every event.
    "CREATE INDEX events_key_records ON events (kind) WHERE kind = 'key'",
    """
    CREATE TABLE sync_map (
        event_id TEXT PRIMARY KEY REFERENCES events (event_id),
        global_seq INTEGER NOT NULL UNIQUE CHECK (global_seq >= 1)
    )
    """,
    # Commit seqs of events without a sync_map row, kept by the triggers below so
    # that pending reads and cursor checks never scan the whole log.
    "CREATE TABLE pending (commit_seq INTEGER PRIMARY KEY)",
    "CREATE TABLE sync_state (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    """
    CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        aggregate_id TEXT NOT NULL,
        event_id TEXT NOT NULL UNIQUE REFERENCES events (event_id)
    )
    """,
    "CREATE INDEX keys_aggregate ON keys (aggregate_id)",
    """
    CREATE TABLE derived (
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        synced_cursor INTEGER NOT NULL,
        committed_cursor INTEGER NOT NULL,
        blob BLOB NOT NULL,
        PRIMARY KEY (name, scope)
    )
    """,
    "CREATE TABLE idempotency (key BLOB PRIMARY KEY, fingerprint BLOB NOT NULL,"
    " result BLOB NOT NULL)",
    "CREATE TABLE conflicts (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)",
    # INV-001, enforced by the database itself.
    """
    CREATE TRIGGER events_synced_no_update BEFORE UPDATE ON events
    WHEN EXISTS (SELECT 1 FROM sync_map WHERE event_id = OLD.event_id)
    BEGIN SELECT RAISE(ABORT, 'INV-001: synced event is immutable'); END
    """,
    """
    CREATE TRIGGER events_synced_no_delete BEFORE DELETE ON events
    WHEN EXISTS (SELECT 1 FROM sync_map WHERE event_id = OLD.event_id)
    BEGIN SELECT RAISE(ABORT, 'INV-001: synced event is immutable'); END
    """,
    """
    CREATE TRIGGER sync_map_no_update BEFORE UPDATE ON sync_map
    BEGIN SELECT RAISE(ABORT, 'INV-001: sync mapping is immutable'); END
    """,
    # A rebase rewrites version and record only (INV-010): identity never changes.
    """
    CREATE TRIGGER events_identity_fixed BEFORE UPDATE ON events
    WHEN NEW.commit_seq IS NOT OLD.commit_seq OR NEW.event_id IS NOT OLD.event_id
      OR NEW.kind IS NOT OLD.kind OR NEW.aggregate_type IS NOT OLD.aggregate_type
      OR NEW.aggregate_id IS NOT OLD.aggregate_id OR NEW.key_id IS NOT OLD.key_id
    BEGIN SELECT RAISE(ABORT, 'event identity is immutable'); END
    """,
    """
    CREATE TRIGGER events_pending_on_insert AFTER INSERT ON events
    BEGIN INSERT INTO pending (commit_seq) VALUES (NEW.commit_seq); END
    """,
    """
    CREATE TRIGGER events_pending_on_delete AFTER DELETE ON events
    BEGIN DELETE FROM pending WHERE commit_seq = OLD.commit_seq; END
    """,
    """
    CREATE TRIGGER sync_map_synced AFTER INSERT ON sync_map
    BEGIN
        DELETE FROM pending
        WHERE commit_seq = (SELECT commit_seq FROM events WHERE event_id = NEW.event_id);
    END
    """,
    """
    CREATE TRIGGER sync_map_forgotten AFTER DELETE ON sync_map
    BEGIN
        INSERT INTO pending (commit_seq)
        SELECT commit_seq FROM events WHERE event_id = OLD.event_id;
    END
    """,
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1,)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def read_schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in meta; 0 for a database without our meta table."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SCHEMA_VERSION_KEY,)).fetchone()
    if row is None or not isinstance(row[0], bytes) or not row[0].isdigit():
        raise MalformedRow("schema version missing or unreadable")
    return int(row[0])


def has_foreign_tables(conn: sqlite3.Connection) -> bool:
    """True if the database holds tables although it is not (yet) a MO Local store."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 1"
    ).fetchone()
    return row is not None


def apply_migrations(
    conn: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS
) -> int:
    """Apply the migrations newer than the recorded version in ONE transaction; return the version.

    The caller has checked that the recorded version is not newer than `len(migrations)`.
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = read_schema_version(conn)
        for statements in migrations[current:]:
            for statement in statements:
                conn.execute(statement)
        if current != target:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION_KEY, str(target).encode("ascii")),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return target
