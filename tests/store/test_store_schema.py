"""Schema v2: allowed plaintext columns, migrations, and INV-001 enforced by the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import v1_store
from store_factories import event, events, key_record

from mo_local.store import EventStore, SchemaTooNew, StoreError
from mo_local.store.schema import MIGRATIONS, SCHEMA_VERSION, apply_migrations, read_schema_version

# DESIGN.md §6: ids, kind, aggregate type/id, version, key id and sequences in
# plaintext; everything else is an opaque (caller-encrypted) blob or a fixed name.
ALLOWED_COLUMNS = {
    "meta": {"key", "value"},
    "events": {"commit_seq", "event_id", "kind", "aggregate_type", "aggregate_id", "version",
               "key_id", "record"},
    "sync_map": {"event_id", "global_seq"},
    "pending": {"commit_seq"},
    "sync_state": {"key", "value"},
    "derived": {"name", "scope", "synced_cursor", "committed_cursor", "blob"},
    "idempotency": {"key", "fingerprint", "result"},
    "conflicts": {"id", "blob"},
    # Created by v1's AUTOINCREMENT. No v2 table uses it, but SQLite never drops it
    # ("table sqlite_sequence may not be dropped"): it stays, empty.
    "sqlite_sequence": {"name", "seq"},
}


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_inv014_tables_hold_only_the_allowed_plaintext_columns(store: EventStore) -> None:
    store.append("g1", 0, [key_record("g1"), event("g1", 1)])
    store.close()
    conn = raw(store.path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")]
    columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    sequences = conn.execute("SELECT * FROM sqlite_sequence").fetchall()
    conn.close()
    assert columns == ALLOWED_COLUMNS
    assert sequences == []


def test_schema_version_is_two_and_reopening_does_not_reapply(store_path: Path) -> None:
    with EventStore.open(store_path, create=True) as s:
        assert s.schema_version() == SCHEMA_VERSION == 2
        s.append("g1", 0, events("g1", 1, 2))
    # Re-running v1 would fail on CREATE TABLE; reopening must find nothing to do.
    with EventStore.open(store_path) as s:
        assert s.schema_version() == 2
        assert s.count_events() == 2
    conn = raw(store_path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [
        (b"2",)
    ]
    conn.close()


def test_migrations_run_in_one_transaction(tmp_path: Path) -> None:
    conn = raw(tmp_path / "m.db")
    assert apply_migrations(conn, MIGRATIONS) == 2
    broken = (*MIGRATIONS, ("CREATE TABLE extra (a INTEGER)", "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, broken)
    assert read_schema_version(conn) == 2
    assert conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'extra'").fetchone() is None

    fixed = (*MIGRATIONS, ("CREATE TABLE extra (a INTEGER)",))
    assert apply_migrations(conn, fixed) == 3
    assert read_schema_version(conn) == 3
    assert apply_migrations(conn, fixed) == 3   # nothing left to apply
    conn.close()


def test_a_newer_schema_is_refused(store_path: Path) -> None:
    EventStore.open(store_path, create=True).close()
    conn = raw(store_path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (b"3",))
    conn.close()
    with pytest.raises(SchemaTooNew) as info:
        EventStore.open(store_path)
    assert (info.value.found, info.value.supported) == (3, 2)
    assert EventStore.lock_holder(store_path) is None


def synced_and_pending(store: EventStore) -> tuple[str, str]:
    synced, pending = event("g1", 1), event("g1", 2)
    store.append("g1", 0, [synced, pending])
    store.mark_synced(synced.event_id, 1)
    store.close()
    return synced.event_id, pending.event_id


def test_inv001_raw_update_and_delete_of_a_synced_event_fail(store: EventStore) -> None:
    synced, _ = synced_and_pending(store)
    conn = raw(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="INV-001: synced event is immutable"):
        conn.execute("UPDATE events SET record = x'00' WHERE event_id = ?", (synced,))
    with pytest.raises(sqlite3.IntegrityError, match="INV-001: synced event is immutable"):
        conn.execute("UPDATE events SET version = 5 WHERE event_id = ?", (synced,))
    with pytest.raises(sqlite3.IntegrityError, match="INV-001: events are never deleted"):
        conn.execute("DELETE FROM events WHERE event_id = ?", (synced,))
    with pytest.raises(sqlite3.IntegrityError, match="INV-001: sync mapping is immutable"):
        conn.execute("UPDATE sync_map SET global_seq = 9 WHERE event_id = ?", (synced,))
    row = conn.execute(
        "SELECT e.version, e.record, m.global_seq FROM events e JOIN sync_map m USING (event_id)"
        " WHERE event_id = ?", (synced,)
    ).fetchone()
    assert row[0] == 1 and row[1] != b"\x00" and row[2] == 1
    conn.close()


def test_inv001_a_pending_event_may_be_rewritten_but_not_deleted(store: EventStore) -> None:
    """The log is append-only: a rebase updates a pending row; no row is ever deleted, so
    no commit seq is handed out twice (rowids are max + 1, without AUTOINCREMENT)."""
    _, pending = synced_and_pending(store)
    conn = raw(store.path)
    assert conn.execute(
        "UPDATE events SET record = x'00' WHERE event_id = ?", (pending,)
    ).rowcount == 1
    with pytest.raises(sqlite3.IntegrityError, match="identity"):
        conn.execute("UPDATE events SET aggregate_id = 'other' WHERE event_id = ?", (pending,))
    with pytest.raises(sqlite3.IntegrityError, match="INV-001: events are never deleted"):
        conn.execute("DELETE FROM events WHERE event_id = ?", (pending,))
    with pytest.raises(sqlite3.IntegrityError, match="INV-001: events are never deleted"):
        conn.execute("DELETE FROM events")
    assert conn.execute("SELECT COUNT(*) FROM pending").fetchone() == (1,)
    conn.close()
    with EventStore.open(store.path) as s:
        assert s.count_events() == 2 and s.count_pending() == 1
        assert s.append("g1", 2, [event("g1", 3)]) == [3]


def test_forgetting_mappings_is_the_only_way_to_unsync(store: EventStore) -> None:
    synced, _ = synced_and_pending(store)
    with EventStore.open(store.path) as s:
        s.forget_sync_mappings()
        s.rewrite_pending(synced, 1, b"rewritten")
        got = s.get_event(synced)
        assert got is not None and got.record == b"rewritten" and got.global_seq is None


def test_an_empty_file_without_create_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "mo.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError, match="no store at"):
        EventStore.open(path)
    with EventStore.open(path, create=True) as s:
        assert s.schema_version() == SCHEMA_VERSION


def wal_frames(conn: sqlite3.Connection, path: Path, write: Callable[[], object]) -> int:
    """How many WAL frames (pages) `write`, one transaction, adds to the log file."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    wal = path.with_name(path.name + "-wal")
    before = wal.stat().st_size
    write()
    grown = wal.stat().st_size - before
    assert grown % (page_size + 24) == 0
    return grown // (page_size + 24)


def test_v2_writes_fewer_pages_per_command_than_v1(tmp_path: Path) -> None:
    """A create (key record + event) and a refine (one event) commit fewer WAL frames:
    no keys table and its three indexes, no events_key_records index, no sqlite_sequence."""
    old_path = tmp_path / "v1" / "mo.db"
    old = v1_store.create(old_path)
    store = EventStore.open(tmp_path / "v2" / "mo.db", create=True)
    new = store._conn
    assert new is not None
    try:
        for conn in (old, new):
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the WAL only grows
        # Warm up: every b-tree has its page, the files have grown.
        v1_store.append(old, [key_record("g0"), event("g0", 1)])
        store.append("g0", 0, [key_record("g0"), event("g0", 1)])

        old_create = wal_frames(old, old_path, lambda: v1_store.append(
            old, [key_record("g1"), event("g1", 1)]))
        new_create = wal_frames(new, store.path, lambda: store.append(
            "g1", 0, [key_record("g1"), event("g1", 1)]))
        old_refine = wal_frames(old, old_path, lambda: v1_store.append(old, [event("g1", 2)]))
        new_refine = wal_frames(new, store.path, lambda: store.append("g1", 1, [event("g1", 2)]))
    finally:
        old.close()
        store.close()
    # v2: events, its event_id index, events_aggregate_version, pending, and for a
    # key record events_key_ids and events_key_aggregates (one page each here).
    assert new_create <= 6 and new_refine <= 4
    # v1 also wrote keys (4 b-trees), events_key_records and sqlite_sequence
    # (measured here: 10 and 5 frames).
    assert new_create < old_create and new_refine < old_refine
