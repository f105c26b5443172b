"""Key records in schema v2: rows of kind 'key', found through two partial indexes."""

from __future__ import annotations

import sqlite3

import pytest
from store_factories import event, events, key_record

from mo_local.store import DuplicateEvent, EventStore, NewEvent, StoreError
from mo_local.store import log as store_log


def plan(store: EventStore, sql: str) -> list[str]:
    """The EXPLAIN QUERY PLAN details of `sql` (its parameters bound to NULL)."""
    conn = store._conn
    assert conn is not None
    params: dict[str, None] | tuple[None, ...]
    if ":" in sql:
        params = dict.fromkeys(("aggregate_id", "after", "limit"))
    else:
        params = (None,) * sql.count("?")
    return [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        (store_log._KEY_RECORD_BY_KEY_ID, "events_key_ids (key_id=?)"),
        (store_log._KEY_ID_TAKEN, "events_key_ids (key_id=?)"),
        (store_log._KEY_IDS_TAKEN, "events_key_ids (key_id=?)"),
        (store_log._AGGREGATE_KEY_RECORDS, "events_key_aggregates (aggregate_id=? AND rowid>?)"),
        (store_log._KEY_RECORD_SEQS, "INDEX events_key_"),  # either: rowids only
    ],
    ids=["key_record", "key id taken", "key ids taken", "one aggregate's", "every key record"],
)
def test_key_record_queries_use_the_partial_indexes(
    store: EventStore, sql: str, index: str
) -> None:
    # Enough rows that a plan scanning the log would be a real choice.
    for n in range(20):
        store.append(f"g{n}", 0, [key_record(f"g{n}"), *events(f"g{n}", 1, 3)])
    details = plan(store, sql)
    assert any(index in detail for detail in details), details
    # No step walks the events table itself.
    assert not any(d.startswith(("SCAN e", "SCAN events")) and "INDEX" not in d for d in details)


def test_key_records_come_in_commit_order_page_by_page(store: EventStore) -> None:
    rows: list[NewEvent] = []
    for n in range(5):
        key = key_record(f"g{n}")
        rows.append(key)
        if n % 2:
            store.insert_remote(key, 10 + n)
        else:
            store.append(f"g{n}", 0, [key, event(f"g{n}", 1)])
    extra = key_record("g1", key_id="second-key-of-g1")   # an aggregate may have two
    store.append("g1", 0, [extra])
    rows.append(extra)
    expected = [r.event_id for r in rows]
    for batch_size in (1, 2, 3, 1000):
        got = list(store.key_records(batch_size=batch_size))
        assert [k.event_id for k in got] == expected
        assert [k.commit_seq for k in got] == sorted(k.commit_seq for k in got)
    assert [k.event_id for k in store.key_records("g1", batch_size=1)] == [
        rows[1].event_id, extra.event_id
    ]
    synced = store.key_record(rows[1].key_id)
    assert synced is not None and synced.global_seq == 11
    assert store.key_record("key-g9") is None
    assert list(store.key_records("g9")) == []
    with pytest.raises(StoreError):
        list(store.key_records(batch_size=0))


def test_a_key_record_written_while_listing_them_is_listed_too(store: EventStore) -> None:
    for n in range(3):
        store.append(f"g{n}", 0, [key_record(f"g{n}")])
    listed = []
    for row in store.key_records(batch_size=2):
        listed.append(row.aggregate_id)
        if row.aggregate_id == "g0":
            store.append("late", 0, [key_record("late")])
    assert listed == ["g0", "g1", "g2", "late"]


def test_a_taken_key_id_is_refused_on_every_path_and_nothing_is_written(
    store: EventStore,
) -> None:
    store.append("g1", 0, [key_record("g1", key_id="shared"), event("g1", 1)])
    count = store.count_events()
    attempts = [
        lambda: store.append("g2", 0, [key_record("g2", key_id="shared")]),
        lambda: store.append("g3", 0, [key_record("g3", key_id="twice"),
                                       key_record("g3", key_id="twice")]),
        lambda: store.insert_remote(key_record("g4", key_id="shared"), 1),
        lambda: store.insert_remote_many([(event("g5", 1), 2),
                                          (key_record("g5", key_id="shared"), 3)]),
    ]
    for attempt in attempts:
        with pytest.raises(StoreError, match=r"key id \w+ is already registered") as info:
            attempt()
        assert not isinstance(info.value, DuplicateEvent)
        assert info.value.__cause__ is None
    assert store.count_events() == count
    assert [k.key_id for k in store.key_records()] == ["shared"]


def test_an_event_id_taken_is_still_a_duplicate_event_for_a_key_record(store: EventStore) -> None:
    key = key_record("g1")
    store.append("g1", 0, [key])
    # Same event id and same key id: the event id is reported, as before.
    with pytest.raises(DuplicateEvent):
        store.append("g2", 0, [key_record("g2", key_id=key.key_id, event_id=key.event_id)])


def test_the_database_refuses_a_second_key_record_with_the_same_key_id(store: EventStore) -> None:
    store.append("g1", 0, [key_record("g1", key_id="k")])
    conn = store._conn
    assert conn is not None
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(
            "INSERT INTO events (event_id, kind, aggregate_type, aggregate_id, version, key_id,"
            " record) VALUES ('x', 'key', 'goal', 'g2', 0, 'k', x'00')"
        )
    # Events carry their key record's key id: only key records are unique by it.
    conn.execute(
        "INSERT INTO events (event_id, kind, aggregate_type, aggregate_id, version, key_id,"
        " record) VALUES ('y', 'event', 'goal', 'g1', 1, 'k', x'00')"
    )
    assert store.current_version("g1") == 1
