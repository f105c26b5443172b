"""Rows read back from SQLite: the cheap type check refuses every impossible column."""

from __future__ import annotations

import pytest

from mo_local.store.errors import MalformedRow
from mo_local.store.records import StoredEvent, stored_event

PENDING: tuple[object, ...] = (3, None, "e1", "event", "goal", "g1", 2, "k1", b"secret-ish")
SYNCED: tuple[object, ...] = (3, 17, "e1", "event", "goal", "g1", 2, "k1", b"secret-ish")
WRONG_VALUES: list[object] = [1.5, "7", 7, b"7", None, True]


def wrong_rows() -> list[tuple[object, ...]]:
    rows = []
    for column in range(9):
        for wrong in WRONG_VALUES:
            allowed: tuple[type, ...] = (
                (int, type(None)) if column == 1 else (type(PENDING[column]),)
            )
            if type(wrong) not in allowed:
                row = list(PENDING)
                row[column] = wrong
                rows.append(tuple(row))
    return rows


def test_sound_rows_become_stored_events() -> None:
    pending = stored_event(PENDING)
    assert pending == StoredEvent(3, None, "e1", "event", "goal", "g1", 2, "k1", b"secret-ish")
    assert not pending.synced and pending.version == 2
    synced = stored_event(SYNCED)
    assert synced.synced and synced.global_seq == 17
    assert stored_event((4, None, "k", "key", "goal", "g1", 0, "k1", b"w")).kind == "key"


@pytest.mark.parametrize("row", wrong_rows())
def test_a_column_of_the_wrong_storage_class_is_malformed(row: tuple[object, ...]) -> None:
    with pytest.raises(MalformedRow):
        stored_event(row)


def test_an_unknown_kind_is_malformed() -> None:
    with pytest.raises(MalformedRow):
        stored_event((3, None, "e1", "snapshot", "goal", "g1", 2, "k1", b"r"))


def test_repr_leaves_out_the_record() -> None:
    text = repr(stored_event(PENDING))
    assert "secret-ish" not in text and "e1" in text and "g1" in text
