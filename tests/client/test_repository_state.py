"""EncryptedRepository.load_state: the folded state it keeps is the fold of the log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mo_local.app.ports import EventMeta
from mo_local.crypto.kdf import KdfParams
from mo_local.crypto.vault import create_vault
from mo_local.domain.errors import ConcurrencyError, NotFound
from mo_local.domain.events import (
    GOAL,
    PROJECT,
    DomainEvent,
    GoalAchieved,
    GoalArchived,
    GoalCreated,
    GoalRefined,
)
from mo_local.domain.fold import fold
from mo_local.domain.values import Priority, Slice, TargetMonth
from mo_local.eventlog import EncryptedLog
from mo_local.repository import EncryptedRepository
from mo_local.store.eventstore import EventStore

AT = "2025-01-02T03:04:05.000000Z"
META = EventMeta(AT, "tester")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EncryptedLog]:
    new = create_vault("store", "passphrase", KdfParams(8192, 1, 1))
    store = EventStore.open(tmp_path / "mo.db", create=True)
    yield EncryptedLog(store, new.vault, "store", "device")
    store.close()


def test_the_kept_state_is_the_fold_of_the_log_after_every_append(log: EncryptedLog) -> None:
    repo = EncryptedRepository(log)
    goal = str(uuid.uuid4())
    batches: list[list[DomainEvent]] = [
        [GoalCreated(goal, AT, "Run", Slice.HEALTH, Priority.MUST, TargetMonth(2027, 5))],
        [GoalRefined(goal, AT, "Run far"), GoalAchieved(goal, AT)],
        [GoalAchieved(goal, AT)],  # skipped by the fold: already achieved
        [GoalArchived(goal, AT)],
        [GoalRefined(goal, AT, "After archiving")],  # skipped: archived
    ]
    version = 0
    assert repo.load_state(GOAL, goal) == (None, 0)
    for batch in batches:
        version = repo.append(GOAL, goal, version, batch, META)
        state, got = repo.load_state(GOAL, goal)
        fresh = EncryptedRepository(log)  # decodes and folds the log from scratch
        events = fresh.load(GOAL, goal)
        assert (state, got) == (fold(GOAL, events)[0], len(events)) == fresh.load_state(GOAL, goal)
        assert got == version
    state, _ = repo.load_state(GOAL, goal)
    assert state is not None and state.archived and state.summary == "Run far"
    repo.forget_loaded()
    assert repo.load_state(GOAL, goal) == (state, version)


def test_the_state_is_advanced_only_from_a_matching_version(log: EncryptedLog) -> None:
    repo = EncryptedRepository(log)
    goal = str(uuid.uuid4())
    repo.append(GOAL, goal, 0, [GoalCreated(goal, AT, "One", Slice.WORK, Priority.MUST,
                                            TargetMonth(2027, 5))], META)
    assert repo.load_state(GOAL, goal)[1] == 1
    # Another writer (here: a second repository) appends behind this one's back.
    EncryptedRepository(log).append(GOAL, goal, 1, [GoalRefined(goal, AT, "Two")], META)
    # This one's next append is from a version the store no longer has: refused, and
    # the stale decoded aggregate is dropped so that the next load reads the log.
    with pytest.raises(ConcurrencyError):
        repo.append(GOAL, goal, 1, [GoalRefined(goal, AT, "Three")], META)
    state, version = repo.load_state(GOAL, goal)
    assert version == 2 and state is not None and state.summary == "Two"


def test_an_aggregate_asked_for_as_another_type_is_not_found(log: EncryptedLog) -> None:
    repo = EncryptedRepository(log)
    goal = str(uuid.uuid4())
    repo.append(GOAL, goal, 0, [GoalCreated(goal, AT, "Goal", Slice.WORK, Priority.MUST,
                                            TargetMonth(2027, 5))], META)
    with pytest.raises(NotFound):
        repo.load_state(PROJECT, goal)  # decoded and kept already
    with pytest.raises(NotFound):
        EncryptedRepository(log).load_state(PROJECT, goal)  # read from the log
    with pytest.raises(NotFound):
        repo.load(PROJECT, goal)


def test_an_unused_id_asked_for_as_either_type_stays_free(log: EncryptedLog) -> None:
    repo = EncryptedRepository(log)
    unused = str(uuid.uuid4())
    assert repo.load_state(GOAL, unused) == (None, 0)
    assert repo.load_state(PROJECT, unused) == (None, 0)
    assert repo.load(GOAL, unused) == []
