"""Page-wise writes and reads of sync: the same checks and errors as the per-row functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from store_factories import event, events, key_record

from mo_local.store import (
    DuplicateEvent,
    EventStore,
    ImmutableEvent,
    InvalidArgument,
    NewEvent,
    StoreError,
    UnknownEvent,
    VersionTaken,
)


def snapshot(store: EventStore) -> list[tuple[object, ...]]:
    """Every row with its mapping, and the pending count: what a refused write must not change."""
    rows: list[tuple[object, ...]] = [tuple(e) for e in store.read_commit_order()]
    return [*rows, ("pending", store.count_pending())]


def test_insert_remote_many_inserts_rows_mappings_and_keys(store: EventStore) -> None:
    key = key_record("g1")
    rows = [key, *events("g1", 1, 3), *events("g2", 1, 2)]
    store.insert_remote(event("g0", 1), 40)  # commit seq 1
    given = store.insert_remote_many([(row, seq) for seq, row in enumerate(rows, start=1)])

    read = list(store.read_commit_order())[1:]
    assert list(given) == [r.commit_seq for r in read] == [2, 3, 4, 5, 6, 7]
    assert [r.event_id for r in read] == [r.event_id for r in rows]
    assert [r.global_seq for r in read] == [1, 2, 3, 4, 5, 6]
    assert all(r.record == n.record for r, n in zip(read, rows, strict=True))
    assert store.count_pending() == 0
    found = store.key_record(key.key_id)
    assert found is not None and found.event_id == key.event_id
    assert store.current_version("g1") == 3 and store.current_version("g2") == 2
    assert list(store.insert_remote_many([])) == []


def test_insert_remote_many_matches_one_by_one_inserts(tmp_path: Path) -> None:
    rows = [key_record("g1"), *events("g1", 1, 4), key_record("g2"), *events("g2", 1, 2)]
    with EventStore.open(tmp_path / "one" / "mo.db", create=True) as one, \
            EventStore.open(tmp_path / "many" / "mo.db", create=True) as many:
        for seq, row in enumerate(rows, start=10):
            one.insert_remote(row, seq)
        many.insert_remote_many([(row, seq) for seq, row in enumerate(rows, start=10)])
        assert snapshot(one) == snapshot(many)


def _stored(store: EventStore) -> NewEvent:
    """An event already in the store, synced at sequence 1 (version 1 of g1)."""
    row = event("g1", 1)
    store.insert_remote(row, 1)
    return row


def _known_id(s: EventStore) -> list[tuple[NewEvent, int]]:
    return [(event("g2", 1), 5), (event("g9", 1, event_id=_stored(s).event_id), 6)]


def _id_twice(s: EventStore) -> list[tuple[NewEvent, int]]:
    return [(event("g2", 1, event_id="dup"), 5), (event("g3", 1, event_id="dup"), 6)]


def _seq_mapped(s: EventStore) -> list[tuple[NewEvent, int]]:
    _stored(s)
    return [(event("g2", 1), 5), (event("g3", 1), 1)]


def _seq_twice(s: EventStore) -> list[tuple[NewEvent, int]]:
    return [(event("g2", 1), 5), (event("g3", 1), 5)]


def _seq_zero(s: EventStore) -> list[tuple[NewEvent, int]]:
    return [(event("g2", 1), 0)]


def _version_held(s: EventStore) -> list[tuple[NewEvent, int]]:
    _stored(s)
    return [(event("g2", 1), 5), (event("g1", 1), 6)]


def _version_twice(s: EventStore) -> list[tuple[NewEvent, int]]:
    return [(event("g2", 1), 5), (event("g2", 1), 6)]


def _key_twice(s: EventStore) -> list[tuple[NewEvent, int]]:
    return [(key_record("g2", key_id="k"), 5), (key_record("g3", key_id="k"), 6)]


def _key_registered(s: EventStore) -> list[tuple[NewEvent, int]]:
    s.insert_remote(key_record("g1", key_id="k"), 1)
    return [(event("g2", 1), 5), (key_record("g3", key_id="k"), 6)]


CONFLICTS: dict[str, tuple[Callable[[EventStore], list[tuple[NewEvent, int]]],
                           type[Exception]]] = {
    "event id already stored": (_known_id, DuplicateEvent),
    "event id twice in the batch": (_id_twice, DuplicateEvent),
    "global seq already mapped": (_seq_mapped, StoreError),
    "global seq twice in the batch": (_seq_twice, StoreError),
    "global seq below 1": (_seq_zero, InvalidArgument),
    "version already held": (_version_held, VersionTaken),
    "version twice in the batch": (_version_twice, VersionTaken),
    "key id twice in the batch": (_key_twice, StoreError),
    "key id already registered": (_key_registered, StoreError),
}


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_insert_remote_many_refuses_like_insert_remote_and_writes_nothing(
    store: EventStore, case: str
) -> None:
    build, error = CONFLICTS[case]
    batch = build(store)
    before = snapshot(store)
    with pytest.raises(error):
        store.insert_remote_many(batch)
    assert snapshot(store) == before


def test_insert_remote_many_reports_the_first_offending_row(store: EventStore) -> None:
    """Two problems in one batch: the error is the one a row-by-row insert meets first."""
    stored = _stored(store)
    batch = [(event("g2", 1), 1), (event("g9", 1, event_id=stored.event_id), 7)]
    with pytest.raises(StoreError) as info:
        store.insert_remote_many(batch)
    assert not isinstance(info.value, DuplicateEvent)
    assert "global sequence 1" in str(info.value)


def test_mark_synced_many_marks_in_order_and_replays(store: EventStore) -> None:
    rows = [key_record("g1"), *events("g1", 1, 3)]
    store.append("g1", 0, rows)
    pairs = [(row.event_id, seq) for seq, row in enumerate(rows, start=1)]
    store.mark_synced_many(pairs)
    assert store.count_pending() == 0
    assert [e.global_seq for e in store.read_commit_order()] == [1, 2, 3, 4]
    store.mark_synced_many(pairs[1:])  # a lost acknowledgement replayed: nothing changes
    assert [e.global_seq for e in store.read_commit_order()] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("synced under another seq", ImmutableEvent),
        ("same event twice, other seqs", ImmutableEvent),
        ("unknown event", UnknownEvent),
        ("seq already mapped", StoreError),
        ("seq twice in the batch", StoreError),
        ("seq below 1", InvalidArgument),
    ],
)
def test_mark_synced_many_refuses_like_mark_synced_and_writes_nothing(
    store: EventStore, case: str, error: type[Exception]
) -> None:
    rows = events("g1", 1, 4)
    store.append("g1", 0, rows)
    store.mark_synced(rows[0].event_id, 1)
    a, b, c = rows[1].event_id, rows[2].event_id, rows[3].event_id
    batch = {
        "synced under another seq": [(a, 2), (rows[0].event_id, 9)],
        "same event twice, other seqs": [(a, 2), (a, 3)],
        "unknown event": [(a, 2), ("nope", 3)],
        "seq already mapped": [(a, 2), (b, 1)],
        "seq twice in the batch": [(a, 2), (b, 2)],
        "seq below 1": [(c, 0)],
    }[case]
    before = snapshot(store)
    with pytest.raises(error):
        store.mark_synced_many(batch)
    assert snapshot(store) == before


def test_mark_synced_many_inside_a_transaction_is_rolled_back_with_it(
    store: EventStore,
) -> None:
    """It joins the open transaction without a savepoint; a failure rolls the whole one back."""
    rows = events("g1", 1, 2)
    store.append("g1", 0, rows)
    with pytest.raises(UnknownEvent), store.transaction():
        store.mark_synced_many([(rows[0].event_id, 1)])
        store.mark_synced_many([("nope", 2)])
    assert store.count_pending() == 2


def test_get_events_finds_those_present(store: EventStore) -> None:
    rows = events("g1", 1, 3)
    store.append("g1", 0, rows)
    store.mark_synced(rows[1].event_id, 4)
    found = store.get_events([rows[2].event_id, "nope", rows[1].event_id, rows[1].event_id])
    assert set(found) == {rows[1].event_id, rows[2].event_id}
    assert found[rows[1].event_id] == store.get_event(rows[1].event_id)
    assert found[rows[1].event_id].global_seq == 4
    assert found[rows[2].event_id].global_seq is None
    assert store.get_events([]) == {}


def test_versions_from_lists_events_at_or_above_each_lowest_version(store: EventStore) -> None:
    store.append("g1", 0, [key_record("g1"), *events("g1", 1, 4)])
    store.append("g2", 0, events("g2", 1, 2))
    g1 = list(store.read_aggregate("g1"))
    store.mark_synced(g1[2].event_id, 1)
    found = sorted(store.versions_from({"g1": 3, "g2": 5, "g3": 1}))
    assert found == [("g1", 3, g1[2].event_id, True), ("g1", 4, g1[3].event_id, False)]
    assert store.versions_from({}) == []


def test_pending_after_a_commit_seq(store: EventStore) -> None:
    rows = events("g1", 1, 5)
    seqs = store.append("g1", 0, rows)
    store.mark_synced(rows[3].event_id, 1)
    after = [e.event_id for e in store.pending(batch_size=2, after=seqs[1])]
    assert after == [rows[2].event_id, rows[4].event_id]


def test_large_cache_is_given_back(store: EventStore) -> None:
    conn = store._db()
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    with store.large_cache(32 * 1024):
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -32 * 1024
        with store.large_cache(1024):  # smaller than what is set: left as it is
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -32 * 1024
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -32 * 1024
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == before
