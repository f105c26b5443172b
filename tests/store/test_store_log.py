"""Appends, reads, sync mappings, rebase rewrites and transactions of the event log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_factories import MARKER, event, events, key_record

from mo_local.store import (
    ConcurrencyError,
    DuplicateEvent,
    EventStore,
    ImmutableEvent,
    InvalidArgument,
    NewEvent,
    StoreError,
    UnknownEvent,
    VersionTaken,
)
from mo_local.store.schema import SCHEMA_VERSION


def test_append_then_read_round_trip(store: EventStore) -> None:
    key = key_record("g1")
    batch = [key, *events("g1", 1, 3)]
    seqs = store.append("g1", 0, batch)

    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert store.current_version("g1") == 3
    read = list(store.read_aggregate("g1"))
    assert [e.version for e in read] == [1, 2, 3]
    for new, stored in zip(batch[1:], read, strict=True):
        assert (stored.event_id, stored.kind, stored.aggregate_type, stored.aggregate_id,
                stored.key_id, stored.record) == (
            new.event_id, new.kind, new.aggregate_type, new.aggregate_id, new.key_id, new.record)
        assert stored.global_seq is None and not stored.synced
    assert [e.version for e in store.read_aggregate("g1", after_version=2)] == [3]
    assert [k.event_id for k in store.key_records("g1")] == [key.event_id]
    assert [k.event_id for k in store.key_records()] == [key.event_id]
    found = store.key_record(key.key_id)
    assert found is not None and found.record == key.record
    got = store.get_event(batch[2].event_id)
    assert got is not None and got.commit_seq == seqs[2] and got.version == 2
    assert store.get_event("nope") is None
    assert store.count_events() == 4 and store.count_pending() == 4


def test_round_trip_survives_reopen(store_path: Path) -> None:
    with EventStore.open(store_path, create=True) as s:
        batch = events("g1", 1, 5, size=3000)
        s.append("g1", 0, batch)
    with EventStore.open(store_path) as s:
        assert [e.record for e in s.read_aggregate("g1")] == [e.record for e in batch]


def test_versions_must_be_contiguous_from_expected(store: EventStore) -> None:
    with pytest.raises(InvalidArgument):
        store.append("g1", 0, [event("g1", 1), event("g1", 3)])
    with pytest.raises(InvalidArgument):
        store.append("g1", 0, [event("g1", 2)])
    with pytest.raises(InvalidArgument):
        store.append("g1", 0, [event("g1", 1), event("other", 2)])
    assert store.count_events() == 0
    store.append("g1", 0, events("g1", 1, 2))
    with pytest.raises(InvalidArgument):
        store.append("g1", 2, [event("g1", 2)])
    assert store.current_version("g1") == 2


def test_new_event_refuses_bad_routing() -> None:
    with pytest.raises(InvalidArgument):
        NewEvent("e", "snapshot", "goal", "g", 1, "k", b"x")
    with pytest.raises(InvalidArgument):
        NewEvent("e", "key", "goal", "g", 1, "k", b"x")
    with pytest.raises(InvalidArgument):
        NewEvent("e", "event", "goal", "g", 0, "k", b"x")


def test_stale_expected_version_raises_and_writes_nothing(store: EventStore) -> None:
    store.append("g1", 0, events("g1", 1, 2))
    before = store.count_events()

    with pytest.raises(ConcurrencyError) as info:
        store.append("g1", 1, [key_record("g1", key_id="k2"), event("g1", 2)])

    assert (info.value.aggregate_id, info.value.expected, info.value.actual) == ("g1", 1, 2)
    assert store.count_events() == before
    assert store.key_record("k2") is None


def test_concurrency_error_inside_outer_transaction_leaves_nothing(store: EventStore) -> None:
    store.append("g1", 0, [event("g1", 1)])
    with store.transaction():
        store.append("g2", 0, [event("g2", 1)])
        with pytest.raises(ConcurrencyError):
            store.append("g1", 0, [event("g1", 1), event("g1", 2)])
        # The first row of this batch is inserted before the duplicate is found;
        # the batch's savepoint must take it back.
        g2_first = next(store.read_aggregate("g2"))
        with pytest.raises(DuplicateEvent):
            store.append("g4", 0, [event("g4", 1), event("g4", 2, event_id=g2_first.event_id)])
        store.append("g3", 0, [event("g3", 1)])
    assert [store.current_version(a) for a in ("g1", "g2", "g3", "g4")] == [1, 1, 1, 0]
    assert store.count_events() == 3


def test_duplicate_event_id_raises_and_writes_nothing(store: EventStore) -> None:
    first = event("g1", 1)
    store.append("g1", 0, [first])
    with pytest.raises(DuplicateEvent) as info:
        store.append("g2", 0, [event("g2", 1), event("g2", 2, event_id=first.event_id)])
    assert info.value.event_id == first.event_id
    assert store.count_events() == 1
    assert store.current_version("g2") == 0


def test_transaction_rolls_back_everything_on_error(store: EventStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.append("g1", 0, [event("g1", 1)])
        with store.transaction():
            store.set_meta("device_id", b"d")
        raise RuntimeError("boom")
    assert store.count_events() == 0
    assert store.get_meta("device_id") is None
    store.append("g1", 0, [event("g1", 1)])  # the connection is usable again
    assert store.current_version("g1") == 1


def test_insert_remote_is_synced_and_refuses_taken_slots(store: EventStore) -> None:
    remote = event("g1", 1)
    seq = store.insert_remote(remote, 7)
    got = store.get_event(remote.event_id)
    assert got is not None and got.global_seq == 7 and got.commit_seq == seq
    assert store.count_pending() == 0

    with pytest.raises(DuplicateEvent):
        store.insert_remote(remote, 8)
    with pytest.raises(VersionTaken):
        store.insert_remote(event("g1", 1), 8)
    with pytest.raises(StoreError):
        store.insert_remote(event("g9", 1), 7)
    assert store.count_events() == 1


def test_mark_synced_is_idempotent_and_never_changes(store: EventStore) -> None:
    a, b = event("g1", 1), event("g1", 2)
    store.append("g1", 0, [a, b])
    store.mark_synced(a.event_id, 1)
    store.mark_synced(a.event_id, 1)  # a replayed acknowledgement
    with pytest.raises(ImmutableEvent):
        store.mark_synced(a.event_id, 2)
    with pytest.raises(StoreError):
        store.mark_synced(b.event_id, 1)
    with pytest.raises(UnknownEvent):
        store.mark_synced("missing", 3)
    assert [e.event_id for e in store.pending()] == [b.event_id]


def test_inv010_rewrite_pending_shifts_versions_and_keeps_identity(store: EventStore) -> None:
    local = events("g1", 1, 2)
    store.append("g1", 0, local)
    # A remote version 1 arrived: shift pending events up, highest first.
    for e in reversed(local):
        store.rewrite_pending(e.event_id, e.version + 1, b"re-sealed " + e.record)
    store.insert_remote(event("g1", 1), 1)

    read = list(store.read_aggregate("g1"))
    assert [e.version for e in read] == [1, 2, 3]
    assert [e.event_id for e in read[1:]] == [e.event_id for e in local]
    assert read[1].commit_seq < read[2].commit_seq < read[0].commit_seq


def test_rewrite_pending_refuses_taken_version_and_key_records(store: EventStore) -> None:
    store.append("g1", 0, [key_record("g1"), *events("g1", 1, 2)])
    first, _ = list(store.read_aggregate("g1"))
    with pytest.raises(VersionTaken):
        store.rewrite_pending(first.event_id, 2, b"x")
    key = next(store.key_records("g1"))
    with pytest.raises(InvalidArgument):
        store.rewrite_pending(key.event_id, 1, b"x")
    with pytest.raises(UnknownEvent):
        store.rewrite_pending("missing", 1, b"x")
    assert store.get_event(first.event_id) == first


def test_inv001_rewrite_pending_on_synced_event_raises(store: EventStore) -> None:
    e = event("g1", 1)
    store.append("g1", 0, [e])
    store.mark_synced(e.event_id, 1)
    with pytest.raises(ImmutableEvent, match="INV-001"):
        store.rewrite_pending(e.event_id, 2, b"other")
    got = store.get_event(e.event_id)
    assert got is not None and got.version == 1 and got.record == e.record


def test_forget_sync_mappings_makes_everything_pending(store: EventStore) -> None:
    store.append("g1", 0, events("g1", 1, 3))
    store.insert_remote(event("g2", 1), 1)
    for seq, e in enumerate(list(store.pending())[:2], start=2):
        store.mark_synced(e.event_id, seq)
    store.save_derived("goals", "all", store.effective_head(), b"cache")
    assert store.count_pending() == 1

    assert store.forget_sync_mappings() == 4
    assert store.count_pending() == 4
    assert all(e.global_seq is None for e in store.read_commit_order())
    assert [e.commit_seq for e in store.pending()] == [1, 2, 3, 4]
    assert store.load_derived("goals", "all") is None


def test_commit_order_reads_everything_after(store: EventStore) -> None:
    store.append("g1", 0, [key_record("g1"), *events("g1", 1, 2)])
    store.insert_remote(event("g2", 1), 1)
    assert [e.commit_seq for e in store.read_commit_order()] == [1, 2, 3, 4]
    assert [e.commit_seq for e in store.read_commit_order(after=2, batch_size=1)] == [3, 4]
    with pytest.raises(InvalidArgument):
        list(store.read_commit_order(batch_size=0))


def test_meta_and_sync_state(store: EventStore) -> None:
    store.set_meta("store_id", b"s-1")
    store.set_meta("store_id", b"s-2")
    assert store.get_meta("store_id") == b"s-2"
    with pytest.raises(InvalidArgument):
        store.set_meta("schema_version", b"9")
    assert store.schema_version() == SCHEMA_VERSION

    store.set_sync_state("cursor", b"12")
    assert store.get_sync_state("cursor") == b"12"
    store.set_sync_state("cursor", None)
    assert store.get_sync_state("cursor") is None


def test_derived_idempotency_and_conflicts(store: EventStore) -> None:
    from mo_local.store import Cursor

    store.save_derived("goals", "all", Cursor(3, 5), b"v1")
    store.save_derived("goals", "all", Cursor(4, 6), b"v2")
    assert store.load_derived("goals", "all") == (Cursor(4, 6), b"v2")
    store.clear_derived()
    assert store.load_derived("goals", "all") is None

    store.put_idempotency(b"k", b"fp", b"result")
    assert store.get_idempotency(b"k") == (b"fp", b"result")
    with pytest.raises(StoreError):
        store.put_idempotency(b"k", b"fp2", b"other")
    assert store.get_idempotency(b"k") == (b"fp", b"result")
    assert store.get_idempotency(b"absent") is None

    assert store.add_conflict(b"c1") < store.add_conflict(b"c2")
    assert store.conflicts() == [b"c1", b"c2"]
    store.clear_conflicts()
    assert store.conflicts() == []


def test_reprs_and_messages_never_show_records(store: EventStore) -> None:
    e = event("g1", 1)
    store.append("g1", 0, [e])
    stored = store.get_event(e.event_id)
    assert MARKER.decode() not in repr(e) and MARKER.decode() not in repr(stored)
    with pytest.raises(ConcurrencyError) as info:
        store.append("g1", 0, [e])
    assert MARKER.decode() not in str(info.value)


def test_closed_store_refuses_work_and_close_is_idempotent(store_path: Path) -> None:
    s = EventStore.open(store_path, create=True)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.count_events()


def test_open_without_create_needs_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        EventStore.open(tmp_path / "absent.db")
    assert not (tmp_path / "absent.lock").exists()


def test_open_refuses_a_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    for create in (False, True):
        with pytest.raises(StoreError, match=r"not a MO Local store|no store"):
            EventStore.open(path, create=create)
    assert EventStore.lock_holder(path) is None


def test_new_store_files_are_private(store: EventStore) -> None:
    assert store.path.stat().st_mode & 0o077 == 0
    assert store.lock_path.stat().st_mode & 0o077 == 0
    assert store.lock_path == store.path.with_suffix(".lock")
