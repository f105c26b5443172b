"""Units of work (EventStore.unit), the change count, and append's constraint-based checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from store_factories import MARKER, event, events, key_record

from mo_local.store import ConcurrencyError, DuplicateEvent, EventStore, StoreError


@contextmanager
def statements(store: EventStore) -> Iterator[list[str]]:
    """The SQL statements the store runs inside the block (trigger bodies left out)."""
    seen: list[str] = []
    last = [""]
    conn = store._conn
    assert conn is not None

    def trace(sql: str) -> None:
        if sql != last[0]:  # a statement that fires triggers is reported again for each
            seen.append(sql.split()[0].upper())
        last[0] = sql

    conn.set_trace_callback(trace)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def test_steps_inside_a_unit_join_it_without_savepoints(store: EventStore) -> None:
    with statements(store) as sql, store.unit():
        assert store.in_transaction
        store.append("g1", 0, [key_record("g1"), *events("g1", 1, 2)])
        with store.transaction():
            store.set_meta("device_id", b"d")
        store.put_idempotency(b"k", b"", b"result")
    assert not store.in_transaction
    assert "SAVEPOINT" not in sql and "RELEASE" not in sql
    assert sql[0] == "BEGIN" and sql[-1] == "COMMIT"
    assert store.current_version("g1") == 2
    assert store.get_meta("device_id") == b"d"
    assert store.get_idempotency(b"k") == (b"", b"result")


def test_an_error_leaving_a_unit_rolls_all_of_it_back(store: EventStore) -> None:
    store.append("g0", 0, [event("g0", 1)])
    with pytest.raises(ConcurrencyError), store.unit():
        store.append("g1", 0, events("g1", 1, 2))
        store.put_idempotency(b"k", b"", b"result")
        store.append("g0", 0, [event("g0", 1)])  # stale
    assert store.current_version("g1") == 0
    assert store.get_idempotency(b"k") is None
    assert store.count_events() == 1
    store.append("g1", 0, [event("g1", 1)])  # the connection is usable again
    assert store.current_version("g1") == 1


def test_a_unit_inside_a_transaction_takes_one_savepoint_and_fails_alone(
    store: EventStore,
) -> None:
    with store.transaction():
        store.append("outer", 0, [event("outer", 1)])
        with statements(store) as sql, pytest.raises(RuntimeError), store.unit():
            store.append("inner", 0, events("inner", 1, 2))
            with store.transaction():
                store.set_meta("device_id", b"d")
            raise RuntimeError("the unit fails")
        assert sql.count("SAVEPOINT") == 1  # the unit's own, none for its steps
        # After the unit, nested transactions take savepoints again.
        with statements(store) as after:
            store.append("later", 0, [event("later", 1)])
        assert after.count("SAVEPOINT") == 1
    assert [store.current_version(a) for a in ("outer", "inner", "later")] == [1, 0, 1]
    assert store.get_meta("device_id") is None


def test_a_failed_commit_rolls_back_and_is_a_store_error(store: EventStore) -> None:
    with pytest.raises(StoreError), store.unit():
        store.append("g1", 0, [event("g1", 1)])
        conn = store._conn
        assert conn is not None
        # A foreign key checked only at COMMIT: SQLite refuses the COMMIT.
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute("INSERT INTO sync_map (global_seq, event_id) VALUES (99, 'x')")
    assert not store.in_transaction
    assert store.count_events() == 0
    store.append("g1", 0, [event("g1", 1)])
    assert store.current_version("g1") == 1


def test_an_existing_event_id_is_found_by_its_constraint_and_the_batch_taken_back(
    store: EventStore,
) -> None:
    old = event("g1", 1)
    store.append("g1", 0, [old])
    count = store.count_events()
    with statements(store) as sql, pytest.raises(DuplicateEvent) as info:
        store.append("g2", 0, [event("g2", 1), event("g2", 2, event_id=old.event_id)])
    assert info.value.event_id == old.event_id
    assert MARKER.decode() not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert sql.count("INSERT") == 2  # no query of its own: the second insert failed
    assert store.count_events() == count
    assert store.current_version("g2") == 0


def test_a_key_id_already_registered_is_refused_and_nothing_is_written(
    store: EventStore,
) -> None:
    store.append("g1", 0, [key_record("g1", key_id="shared"), event("g1", 1)])
    count = store.count_events()
    with pytest.raises(StoreError, match="key id shared is already registered") as info:
        store.append("g2", 0, [key_record("g2", key_id="shared"), event("g2", 1)])
    assert not isinstance(info.value, DuplicateEvent)
    assert store.count_events() == count
    assert store.current_version("g2") == 0
    # Inside an outer transaction the append's savepoint takes its rows back.
    with store.transaction():
        with pytest.raises(StoreError):
            store.append("g2", 0, [key_record("g2", key_id="shared"), event("g2", 1)])
        store.append("g3", 0, [event("g3", 1)])
    assert store.count_events() == count + 1
    assert [k.aggregate_id for k in store.key_records()] == ["g1"]


def test_the_change_count_grows_with_writes_only(store: EventStore) -> None:
    start = store.changes()
    store.current_version("g1")
    list(store.read_commit_order())
    assert store.changes() == start
    store.append("g1", 0, [event("g1", 1)])
    after_append = store.changes()
    assert after_append > start
    store.set_meta("device_id", b"d")
    assert store.changes() > after_append
    rolled_back = store.changes()
    with pytest.raises(DuplicateEvent):
        store.append("g2", 0, [event("g2", 1), event("g2", 2, event_id="dup"),
                               event("g2", 3, event_id="dup")])
    with pytest.raises(ConcurrencyError):
        store.append("g1", 0, [event("g1", 1)])
    assert store.changes() == rolled_back  # refused before writing anything
