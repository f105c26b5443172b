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

# Schema v2 writes fewer b-trees per event (each is a WAL frame in every commit):
# - `events.commit_seq` is a plain INTEGER PRIMARY KEY: AUTOINCREMENT wrote the
#   `sqlite_sequence` page on every commit. A rowid is still max + 1, and since no
#   event row is ever deleted (`events_no_delete`) a commit seq is never reused.
# - no `keys` table: a key record is the events row of kind 'key', found by two
#   partial indexes (queries must say `kind = 'key'` literally to use them).
# - `sync_map` is keyed by its global seq: two b-trees instead of three.
# SQLite keeps the (now empty) `sqlite_sequence` table: it cannot be dropped.
_V2: Final[tuple[str, ...]] = (
    # Triggers first: they name the tables being replaced.
    "DROP TRIGGER events_synced_no_update",
    "DROP TRIGGER events_synced_no_delete",
    "DROP TRIGGER sync_map_no_update",
    "DROP TRIGGER events_identity_fixed",
    "DROP TRIGGER events_pending_on_insert",
    "DROP TRIGGER events_pending_on_delete",
    "DROP TRIGGER sync_map_synced",
    "DROP TRIGGER sync_map_forgotten",
    # New tables under temporary names; the new sync_map references the new events
    # table, and RENAME rewrites that reference. Only with legacy_alter_table off
    # (SQLite's default, stated here so that nothing else decides it).
    "PRAGMA legacy_alter_table = OFF",
    """
    CREATE TABLE events_v2 (
        commit_seq INTEGER PRIMARY KEY,
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
    "INSERT INTO events_v2 (commit_seq, event_id, kind, aggregate_type, aggregate_id, version,"
    " key_id, record) SELECT commit_seq, event_id, kind, aggregate_type, aggregate_id, version,"
    " key_id, record FROM events ORDER BY commit_seq",
    """
    CREATE TABLE sync_map_v2 (
        global_seq INTEGER PRIMARY KEY CHECK (global_seq >= 1),
        event_id TEXT NOT NULL UNIQUE REFERENCES events_v2 (event_id)
    )
    """,
    "INSERT INTO sync_map_v2 (global_seq, event_id)"
    " SELECT global_seq, event_id FROM sync_map ORDER BY global_seq",
    # Children before their parent: with foreign keys on, DROP TABLE first deletes
    # every row, and a row still referencing the old events table would stop it.
    "DROP TABLE keys",
    "DROP TABLE sync_map",
    "DROP TABLE events",
    "ALTER TABLE events_v2 RENAME TO events",
    "ALTER TABLE sync_map_v2 RENAME TO sync_map",
    "CREATE UNIQUE INDEX events_aggregate_version ON events (aggregate_id, version)"
    " WHERE kind = 'event'",
    # A key id belongs to one key record (the old keys table's primary key).
    "CREATE UNIQUE INDEX events_key_ids ON events (key_id) WHERE kind = 'key'",
    # A new aggregate's key record is looked up by aggregate; also lists every key
    # record (commit seqs sorted from this small index) without reading the log.
    "CREATE INDEX events_key_aggregates ON events (aggregate_id) WHERE kind = 'key'",
    # INV-001, enforced by the database itself.
    """
    CREATE TRIGGER events_synced_no_update BEFORE UPDATE ON events
    WHEN EXISTS (SELECT 1 FROM sync_map WHERE event_id = OLD.event_id)
    BEGIN SELECT RAISE(ABORT, 'INV-001: synced event is immutable'); END
    """,
    # The log is append-only: a rebase UPDATEs pending rows, nothing deletes one.
    # This also keeps commit seqs from being reused now that AUTOINCREMENT is gone,
    # and makes v1's delete triggers (synced rows; the pending table) moot.
    """
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'INV-001: events are never deleted'); END
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

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2)
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
