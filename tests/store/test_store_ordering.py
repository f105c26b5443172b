"""Commit order, effective order, streaming, and the effective-order cursor (INV-002, INV-011)."""

from __future__ import annotations

import tempfile
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_factories import event, events

from mo_local.store import Cursor, EventStore, NewEvent, StoredEvent


def ids(rows: Iterable[NewEvent | StoredEvent]) -> list[str]:
    return [e.event_id for e in rows]


def apply_all(store: EventStore, cursor: Cursor) -> tuple[list[str], Cursor]:
    applied = []
    for e in store.read_effective_order(after=cursor, batch_size=2):
        applied.append(e.event_id)
        cursor = EventStore.advance(cursor, e)
    return applied, cursor


def test_effective_order_puts_synced_by_global_seq_then_pending_by_commit(
    store: EventStore,
) -> None:
    local = events("g1", 1, 3)
    store.append("g1", 0, local)                        # commit 1, 2, 3
    r1, r2 = event("g2", 1), event("g2", 2)
    store.insert_remote(r1, 1)                          # commit 4
    store.mark_synced(local[0].event_id, 2)
    store.insert_remote(r2, 3)                          # commit 5
    later = event("g1", 4)
    store.append("g1", 3, [later])                      # commit 6

    commit = ids(store.read_commit_order())
    assert commit == [*ids(local), r1.event_id, r2.event_id, later.event_id]
    effective = ids(store.read_effective_order())
    assert effective == [r1.event_id, local[0].event_id, r2.event_id,
                         local[1].event_id, local[2].event_id, later.event_id]
    assert ids(store.read_effective_order(batch_size=1)) == effective
    assert ids(store.pending()) == [local[1].event_id, local[2].event_id, later.event_id]
    assert store.effective_head() == Cursor(synced=3, committed=6)


def test_advance_moves_the_right_half_of_the_cursor() -> None:
    synced = StoredEvent(4, 9, "a", "event", "goal", "g", 1, "k", b"")
    pending = StoredEvent(7, None, "b", "event", "goal", "g", 2, "k", b"")
    assert EventStore.advance(Cursor(3, 5), synced) == Cursor(9, 5)
    assert EventStore.advance(Cursor(10, 5), synced) == Cursor(10, 5)
    assert EventStore.advance(Cursor(3, 5), pending) == Cursor(3, 7)


def test_reads_stream_in_bounded_memory(store: EventStore) -> None:
    total, size = 1500, 4000
    for n in range(15):
        store.append(f"g{n}", 0, events(f"g{n}", 1, total // 15, size=size))
    for seq, e in enumerate(list(store.read_commit_order())[: total // 2], start=1):
        store.mark_synced(e.event_id, seq)

    reads: list[Callable[[], Iterator[StoredEvent]]] = [
        lambda: store.read_commit_order(batch_size=7),
        lambda: store.read_effective_order(batch_size=7),
        lambda: store.pending(batch_size=7),
    ]
    for read in reads:
        tracemalloc.start()
        try:
            count = sum(1 for _ in read())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count in (total, total // 2)
        # ~6 MB of records in total; a page of 7 is ~28 kB.
        assert peak < 1_000_000, peak

    assert len(ids(store.read_effective_order(batch_size=7))) == total
    assert ids(store.read_effective_order(batch_size=7)) == ids(store.read_effective_order())


def test_inv011_cursor_stays_valid_after_pushing_applied_pending_events(
    store: EventStore,
) -> None:
    store.insert_remote(event("g2", 1), 1)
    store.append("g1", 0, events("g1", 1, 2))
    applied, cursor = apply_all(store, Cursor())
    assert cursor == Cursor(synced=1, committed=3)

    for seq, e in enumerate(list(store.pending()), start=2):
        store.mark_synced(e.event_id, seq)   # the push got the next global seqs

    assert store.cursor_is_prefix(cursor)
    assert ids(store.read_effective_order(after=cursor)) == []
    late = event("g2", 2)
    store.insert_remote(late, 4)
    assert store.cursor_is_prefix(cursor)
    assert ids(store.read_effective_order(after=cursor)) == [late.event_id]
    assert [*applied, late.event_id] == ids(store.read_effective_order())


def test_inv011_remote_event_before_applied_pending_invalidates_cursor(
    store: EventStore,
) -> None:
    store.append("g1", 0, events("g1", 1, 2))
    _, cursor = apply_all(store, Cursor())
    assert store.cursor_is_prefix(cursor)

    store.insert_remote(event("g2", 1), 1)     # sorts before the applied pending events
    assert not store.cursor_is_prefix(cursor)

    for seq, e in enumerate(list(store.pending()), start=2):
        store.mark_synced(e.event_id, seq)
    # Still invalid once pushed: the applied events now sort after the remote one.
    assert not store.cursor_is_prefix(cursor)
    rebuilt, head = apply_all(store, Cursor())
    assert head == store.effective_head()
    assert store.cursor_is_prefix(head)
    assert rebuilt == ids(store.read_effective_order())


def test_cursor_of_empty_and_unchanged_stores_is_a_prefix(store: EventStore) -> None:
    assert store.cursor_is_prefix(Cursor())
    assert store.effective_head() == Cursor()
    store.append("g1", 0, events("g1", 1, 2))
    assert store.cursor_is_prefix(Cursor())
    _, cursor = apply_all(store, Cursor())
    store.append("g1", 2, [event("g1", 3)])
    assert store.cursor_is_prefix(cursor)


# -- property: the cursor describes exactly what was applied --------------------------

@dataclass
class Model:
    """What the test believes: every event with its commit seq and (if synced) global seq."""

    commit: dict[str, int] = field(default_factory=dict)
    synced: dict[str, int] = field(default_factory=dict)
    next_global: int = 1

    def effective(self) -> list[str]:
        synced = sorted(self.synced, key=lambda e: self.synced[e])
        pending = sorted((e for e in self.commit if e not in self.synced),
                         key=lambda e: self.commit[e])
        return synced + pending


operation = st.one_of(
    st.tuples(st.just("local"), st.integers(0, 2), st.integers(1, 3)),
    st.tuples(st.just("remote"), st.integers(0, 2), st.integers(1, 2)),
    st.tuples(st.just("push"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("apply"), st.integers(1, 5), st.integers(1, 3)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=30))
def test_inv011_applied_prefix_plus_rest_is_the_effective_order(
    ops: list[tuple[str, int, int]],
) -> None:
    """Whenever cursor_is_prefix holds, applied + read(after=cursor) == effective order."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore.open(Path(tmp) / "mo.db", create=True)
        try:
            run_operations(store, ops)
        finally:
            store.close()


def run_operations(store: EventStore, ops: list[tuple[str, int, int]]) -> None:
    model = Model()
    applied: list[str] = []
    cursor = Cursor()
    for op, a, b in ops:
        if op == "local":
            agg = f"local-{a}"
            batch = events(agg, store.current_version(agg) + 1, b)
            seqs = store.append(agg, store.current_version(agg), batch)
            model.commit.update(zip(ids(batch), seqs, strict=True))
        elif op == "remote":
            agg = f"remote-{a}"
            for _ in range(b):
                remote = event(agg, store.current_version(agg) + 1)
                model.commit[remote.event_id] = store.insert_remote(remote, model.next_global)
                model.synced[remote.event_id] = model.next_global
                model.next_global += 1
        elif op == "push":
            for e in list(store.pending(batch_size=2))[:a]:
                store.mark_synced(e.event_id, model.next_global)
                model.synced[e.event_id] = model.next_global
                model.next_global += 1
        else:
            effective = model.effective()
            is_prefix = applied == effective[: len(applied)]
            assert store.cursor_is_prefix(cursor) == is_prefix
            if not is_prefix:
                applied, cursor = [], Cursor()   # rebuild
            rest = list(store.read_effective_order(after=cursor, batch_size=b))
            assert applied + ids(rest) == effective
            for e in rest[:a]:
                applied.append(e.event_id)
                cursor = EventStore.advance(cursor, e)
        assert ids(store.read_effective_order(batch_size=3)) == model.effective()
    head = store.effective_head()
    assert store.cursor_is_prefix(head)
    assert list(store.read_effective_order(after=head)) == []
