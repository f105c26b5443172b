"""Migration 2 (schema v1 -> v2): rows, sequences and orders survive; a failure changes nothing."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import v1_store
from store_factories import event, events, key_record, record

from mo_local.store import Cursor, EventStore, ImmutableEvent
from mo_local.store.schema import MIGRATIONS, apply_migrations, read_schema_version

ROWS = (
    "SELECT e.commit_seq, m.global_seq, e.event_id, e.kind, e.aggregate_type, e.aggregate_id,"
    " e.version, e.key_id, e.record FROM events e LEFT JOIN sync_map m ON m.event_id = e.event_id"
    " ORDER BY e.commit_seq"
)
SIDE_TABLES = ("meta", "sync_state", "derived", "idempotency", "conflicts")


@dataclass
class V1Store:
    """What a v1 store holds, read with plain SQL before it is migrated."""

    rows: list[tuple[object, ...]]
    pending: list[int]
    side: dict[str, list[tuple[object, ...]]]
    keys: dict[str, str]                # key id -> event id, from the v1 keys table
    effective: list[str]                # event ids in effective order
    synced_id: str                      # an event with a global seq
    pending_id: str                     # an event without


def fill_v1(path: Path) -> V1Store:
    """A v1 store with pending and synced events, key records both ways, and a rebase."""
    conn = v1_store.create(path)
    k1, g1 = key_record("g1"), events("g1", 1, 3)
    v1_store.append(conn, [k1, *g1])                       # commit 1-4
    v1_store.mark_synced(conn, k1.event_id, 1)             # pushed
    v1_store.mark_synced(conn, g1[0].event_id, 2)
    k2, r2 = key_record("g2"), events("g2", 1, 2)
    v1_store.insert_remote(conn, k2, 3)                    # commit 5, pulled
    v1_store.insert_remote(conn, r2[0], 4)                 # commit 6
    k3, g3 = key_record("g3"), events("g3", 1, 2)
    v1_store.append(conn, [k3, *g3])                       # commit 7-9, pending
    # Another device wrote g3's version 1 first: the local pending events move up
    # (highest first), then the remote one goes in.
    v1_store.rewrite(conn, g3[1].event_id, 3, record())
    v1_store.rewrite(conn, g3[0].event_id, 2, record())
    v1_store.insert_remote(conn, event("g3", 1), 5)        # commit 10
    v1_store.mark_synced(conn, g1[1].event_id, 6)          # pushed after the pull
    v1_store.insert_remote(conn, r2[1], 7)                 # commit 11
    v1_store.append(conn, [event("g1", 4)])                # commit 12, pending
    conn.execute("INSERT INTO meta (key, value) VALUES ('store_id', x'0102')")
    conn.execute("INSERT INTO sync_state (key, value) VALUES ('cursor', x'07')")
    conn.execute("INSERT INTO derived VALUES ('goals', '', 6, 9, x'aa')")
    conn.execute("INSERT INTO idempotency VALUES (x'01', x'02', x'03')")
    conn.execute("INSERT INTO conflicts (blob) VALUES (x'cc')")

    synced = [str(r[0]) for r in conn.execute("SELECT event_id FROM sync_map ORDER BY global_seq")]
    pending_ids = [str(r[0]) for r in conn.execute(
        "SELECT e.event_id FROM pending p JOIN events e USING (commit_seq) ORDER BY commit_seq"
    )]
    before = V1Store(
        rows=conn.execute(ROWS).fetchall(),
        pending=[int(r[0]) for r in conn.execute("SELECT commit_seq FROM pending ORDER BY 1")],
        side=dump_side_tables(conn),
        keys=dict(conn.execute("SELECT key_id, event_id FROM keys").fetchall()),
        effective=synced + pending_ids,
        synced_id=g1[0].event_id,
        pending_id=g3[0].event_id,
    )
    assert read_schema_version(conn) == 1
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone() == (12,)
    conn.close()
    # The store holds what it was built to hold.
    assert len(before.rows) == 12 and before.pending == [4, 7, 8, 9, 12]
    assert len(before.keys) == 3 and len(before.effective) == 12
    return before


def dump_side_tables(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: conn.execute(
            f"SELECT * FROM {table}"
            + (" WHERE key != 'schema_version'" if table == "meta" else "") + " ORDER BY 1"
        ).fetchall()
        for table in SIDE_TABLES
    }


def dump_schema(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], dict[str, object]]:
    """Every table, index and trigger with its SQL, and the foreign keys of each table.

    Not SQLite's own `sqlite_sequence`: no v2 table uses it, a new store keeps it
    empty, and the VACUUM after migrating an existing store drops it.
    """
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema"
        " WHERE name != 'sqlite_sequence' ORDER BY type, name"
    ).fetchall()
    tables = [str(r[1]) for r in objects if r[0] == "table"]
    fks = {t: conn.execute(f"PRAGMA foreign_key_list({t})").fetchall() for t in tables}
    return objects, fks


def test_migration_2_keeps_every_row_sequence_and_order(tmp_path: Path) -> None:
    path = tmp_path / "home" / "mo.db"
    before = fill_v1(path)

    with EventStore.open(path) as store:
        assert store.schema_version() == 2
        assert [tuple(e) for e in store.read_commit_order()] == before.rows
        assert [e.commit_seq for e in store.pending()] == before.pending
        key_rows = [row for row in before.rows if row[3] == "key"]
        assert [tuple(k) for k in store.key_records()] == key_rows
        assert [tuple(k) for k in store.key_records(batch_size=1)] == key_rows
        for aggregate in ("g1", "g2", "g3"):
            assert [tuple(k) for k in store.key_records(aggregate)] == [
                row for row in key_rows if row[5] == aggregate
            ]
        for key_id, event_id in before.keys.items():
            found = store.key_record(key_id)
            assert found is not None and found.event_id == event_id
        for batch_size in (1, 2, 1000):
            assert [e.event_id for e in store.read_effective_order(batch_size=batch_size)] == (
                before.effective
            )
        assert store.effective_head() == Cursor(synced=7, committed=12)
        # Applied up to (6, 9), then the pull at 7 sorts before the applied pending
        # events (INV-011); up to (7, 9) only the last local event is outside.
        assert not store.cursor_is_prefix(Cursor(synced=6, committed=9))
        assert store.cursor_is_prefix(Cursor(synced=7, committed=9))
        assert [e.event_id for e in store.read_effective_order(Cursor(6, 9))] == [
            before.rows[10][2], before.rows[11][2]
        ]
        # INV-001 still holds, through the store and underneath it.
        with pytest.raises(ImmutableEvent):
            store.rewrite_pending(before.synced_id, 9, b"x")
        store.rewrite_pending(before.pending_id, 2, b"rebased")
        # A new commit seq is above every old one.
        assert store.append("g1", 4, [event("g1", 5)]) == [13]

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert dump_side_tables(conn) == before.side
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # RENAME rewrote the new sync_map's reference from events_v2 to events.
        assert [(r[2], r[3], r[4]) for r in conn.execute("PRAGMA foreign_key_list(sync_map)")] == [
            ("events", "event_id", "event_id")
        ]
        # Emptied by the migration, then dropped by the VACUUM that follows it.
        assert conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'"
        ).fetchall() == []
        with pytest.raises(sqlite3.IntegrityError, match="INV-001: synced event is immutable"):
            conn.execute("UPDATE events SET record = x'00' WHERE event_id = ?", (before.synced_id,))
        for event_id in (before.synced_id, before.pending_id):
            with pytest.raises(sqlite3.IntegrityError, match="INV-001: events are never deleted"):
                conn.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
        migrated = dump_schema(conn)
    finally:
        conn.close()

    # The migrated store has the schema of a store created at v2.
    with EventStore.open(tmp_path / "new" / "mo.db", create=True):
        pass
    fresh = sqlite3.connect(tmp_path / "new" / "mo.db")
    try:
        assert migrated == dump_schema(fresh)
    finally:
        fresh.close()
    names = {str(o[1]) for o in migrated[0]}
    assert "keys" not in names and not any(name.endswith("_v2") for name in names)
    assert {"events_key_ids", "events_key_aggregates", "events_no_delete"} <= names


def test_a_migration_failing_halfway_leaves_the_v1_store_untouched(tmp_path: Path) -> None:
    path = tmp_path / "home" / "mo.db"
    before = fill_v1(path)
    conn = v1_store.connect(path)
    schema = dump_schema(conn)
    # Fail after the old tables are dropped and the new ones renamed into place.
    v2 = MIGRATIONS[1]
    cut = next(i for i, sql in enumerate(v2) if "RENAME TO sync_map" in sql) + 1
    broken = (*MIGRATIONS[:1], (*v2[:cut], "THIS IS NOT SQL"))
    try:
        with pytest.raises(sqlite3.OperationalError):
            apply_migrations(conn, broken)
        assert not conn.in_transaction
        assert read_schema_version(conn) == 1
        assert dump_schema(conn) == schema
        assert conn.execute(ROWS).fetchall() == before.rows
        assert conn.execute("SELECT commit_seq FROM pending ORDER BY 1").fetchall() == [
            (seq,) for seq in before.pending
        ]
        assert dict(conn.execute("SELECT key_id, event_id FROM keys").fetchall()) == before.keys
        assert dump_side_tables(conn) == before.side
        assert conn.execute("SELECT seq FROM sqlite_sequence").fetchall() == [(12,)]
    finally:
        conn.close()
    # The real migration still goes through afterwards.
    with EventStore.open(path) as store:
        assert store.schema_version() == 2
        assert [tuple(e) for e in store.read_commit_order()] == before.rows


def test_a_new_store_runs_both_migrations_in_one_transaction(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        assert apply_migrations(conn) == 2
    finally:
        conn.set_trace_callback(None)
    assert [s for s in seen if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    assert read_schema_version(conn) == 2
    conn.close()


def test_the_migration_renames_references_even_on_a_legacy_alter_table_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "home" / "mo.db"
    before = fill_v1(path)
    # Legacy renames with foreign keys off would leave sync_map pointing at events_v2.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        assert apply_migrations(conn) == 2
        assert [r[2] for r in conn.execute("PRAGMA foreign_key_list(sync_map)")] == ["events"]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute(ROWS).fetchall() == before.rows
    finally:
        conn.close()


def test_migrating_a_store_gives_back_the_pages_of_the_old_tables(tmp_path: Path) -> None:
    """The rebuilt tables would leave the old ones' pages free in the file (about doubling
    it); opening the store compacts it once, keeping every row and sequence."""
    path = tmp_path / "home" / "mo.db"
    conn = v1_store.create(path)
    for n in range(200):
        aggregate = f"g{n}"
        v1_store.append(conn, [key_record(aggregate), *events(aggregate, 1, 5, size=600)])
    for seq, (event_id,) in enumerate(conn.execute("SELECT event_id FROM events ORDER BY 1")):
        if seq % 3 == 0:
            v1_store.mark_synced(conn, str(event_id), seq + 1)
    rows = conn.execute(ROWS).fetchall()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages_before = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()

    with EventStore.open(path) as store:
        assert store.schema_version() == 2
        assert [tuple(e) for e in store.read_commit_order()] == rows
        # Nor is the rewritten file left behind in the WAL while the store is open.
        assert (path.parent / (path.name + "-wal")).stat().st_size == 0

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        # v2 stores the same rows in fewer b-trees: no more pages than v1 held.
        assert conn.execute("PRAGMA page_count").fetchone()[0] <= pages_before
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
