"""Appending whole batches: one duplicate check per batch, big batches, big pages."""

from __future__ import annotations

import pytest
from store_factories import event, events, key_record

from mo_local.store import Cursor, DuplicateEvent, EventStore


def test_a_duplicate_event_id_inside_one_batch_writes_nothing(store: EventStore) -> None:
    first = event("g1", 1)
    with pytest.raises(DuplicateEvent) as info:
        store.append("g1", 0, [first, event("g1", 2, event_id=first.event_id)])
    assert info.value.event_id == first.event_id
    assert store.count_events() == 0


def test_the_first_existing_event_id_of_a_batch_is_named(store: EventStore) -> None:
    old = [event("g1", 1), event("g1", 2)]
    store.append("g1", 0, old)
    batch = [event("g2", 1), event("g2", 2, event_id=old[1].event_id),
             event("g2", 3, event_id=old[0].event_id)]
    with pytest.raises(DuplicateEvent) as info:
        store.append("g2", 0, batch)
    assert info.value.event_id == old[1].event_id
    assert store.current_version("g2") == 0


def test_a_large_batch_is_appended_and_read_back_across_pages(store: EventStore) -> None:
    batch = [key_record("g1"), *events("g1", 1, 2500)]
    seqs = store.append("g1", 0, batch)
    assert seqs == sorted(seqs) and len(seqs) == 2501
    read = list(store.read_effective_order(Cursor(), batch_size=1000))
    assert [r.event_id for r in read] == [e.event_id for e in batch]
    with pytest.raises(DuplicateEvent):
        store.append("g1", 2500, [event("g1", 2501), event("g1", 2502,
                                                            event_id=batch[2000].event_id)])
