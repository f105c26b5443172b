"""Projector: effective-order cursor, catch-up, rebuild, caches, reordering (real parts)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from derived_helpers import (
    AT,
    Env,
    goal_created,
    linked,
    make_env,
    model_state,
    project_created,
)

from mo_local.app.queries import ListGoals
from mo_local.derived import cache
from mo_local.derived.projector import Projector
from mo_local.domain.events import (
    DomainEvent,
    GoalArchived,
    GoalPrioritized,
    GoalRefined,
    ProjectRenamed,
    ProjectStatusTransitioned,
)
from mo_local.domain.values import Priority, ProjectStatus
from mo_local.store.records import Cursor, NewEvent, StoredEvent


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def some_events(n: int) -> list[DomainEvent]:
    """n goals and n linked projects, each with a few edits."""
    events: list[DomainEvent] = []
    for i in range(n):
        goal = goal_created(f"Goal {i}")
        project = project_created(f"Project {i}")
        events += [goal, GoalRefined(goal.aggregate_id, AT, f"Goal {i} refined")]
        events += [project, linked(project.aggregate_id, goal.aggregate_id)]
        events += [ProjectStatusTransitioned(project.aggregate_id, AT, ProjectStatus.IN_PROGRESS)]
    return events


def fresh_rebuild(env: Env) -> Projector:
    """A projector that ignores any cache and replays the whole log."""
    projector = env.projector()
    projector.rebuild()
    return projector


def test_inv002_cursor_in_effective_order_and_catch_up_applies_only_new_events(env: Env) -> None:
    env.append(*some_events(3))
    projector = env.projector()
    assert projector.open() == 15
    assert projector.cursor == env.store.effective_head()
    before = env.log.opened

    goal = goal_created("Later")
    env.append(goal, GoalPrioritized(goal.aggregate_id, AT, Priority.MAYBE))
    assert projector.catch_up() == 2
    assert env.log.opened - before == 2  # only the new events were decrypted
    assert projector.cursor == env.store.effective_head()
    view = projector.model.goal(goal.aggregate_id)
    assert view is not None and view.priority == "maybe" and view.version == 2
    assert projector.catch_up() == 0  # nothing new: nothing applied twice
    assert projector.model.applied == 17


def test_inv002_cursor_moves_in_global_order_once_events_are_synced(env: Env) -> None:
    stored = env.append(*some_events(2))
    projector = env.projector()
    projector.open()
    # A push assigns the next global sequences: no rebuild, the cursor stays a prefix.
    for seq, row in enumerate(env.store.pending(), start=1):
        env.store.mark_synced(row.event_id, seq)
    assert env.store.cursor_is_prefix(projector.cursor)
    later = goal_created("After push")
    env.append(later)
    assert projector.catch_up() == 1
    assert projector.rebuilds == 1  # the first open only
    assert projector.cursor.committed == env.store.effective_head().committed
    assert projector.model.applied == len(stored) + 1


def test_rebuild_equals_incremental_processing(env: Env) -> None:
    events = some_events(4)
    incremental = env.projector()
    incremental.open()
    for start in range(0, len(events), 3):
        env.append(*events[start : start + 3])
        incremental.catch_up()
    goal_id = events[0].aggregate_id
    env.append(GoalArchived(goal_id, AT), GoalRefined(goal_id, AT, "conflict"))
    incremental.catch_up()
    rebuilt = fresh_rebuild(env)
    assert model_state(incremental.model) == model_state(rebuilt.model)
    assert len(incremental.model.conflicts()) == 1
    assert incremental.cursor == rebuilt.cursor


def test_valid_cache_decrypts_only_events_after_its_cursor(env: Env) -> None:
    env.append(*some_events(5))
    first = env.projector()
    first.open()
    first.close()
    env.append(GoalRefined(some_goal_id(env, first), AT, "after the cache"), goal_created("New"))

    env.reopen()  # a new process: fresh log, opened == 0
    second = env.projector()
    assert second.open() == 2
    assert env.log.opened == 2
    assert second.rebuilds == 0
    assert model_state(second.model) == model_state(fresh_rebuild(env).model)


def some_goal_id(env: Env, projector: Projector) -> str:
    return projector.model.all_goal_ids()[0]


def test_cache_is_saved_on_close_and_every_n_events(env: Env) -> None:
    env.append(*some_events(2))
    projector = env.projector(save_every=4)
    projector.open()
    assert env.store.load_derived(cache.READ_MODEL, env.store_id) is not None
    env.append(goal_created("a"), goal_created("b"), goal_created("c"), goal_created("d"))
    projector.catch_up()
    row = env.store.load_derived(cache.READ_MODEL, env.store_id)
    assert row is not None and row[0] == projector.cursor  # saved after 4 new events
    env.append(goal_created("e"))
    projector.catch_up()
    row = env.store.load_derived(cache.READ_MODEL, env.store_id)
    assert row is not None and row[0] != projector.cursor
    projector.close()
    row = env.store.load_derived(cache.READ_MODEL, env.store_id)
    assert row is not None and row[0] == projector.cursor


def flip_cache_byte(path: Path, offset: int) -> None:
    with sqlite3.connect(path) as conn:
        (blob,) = conn.execute("SELECT blob FROM derived").fetchone()
        data = bytearray(blob)
        data[offset % len(data)] ^= 0x01
        conn.execute("UPDATE derived SET blob = ?", (bytes(data),))


@pytest.mark.parametrize("offset", [-1, -20, 40])
def test_tampered_cache_is_dropped_and_rebuilt(env: Env, offset: int) -> None:
    env.append(*some_events(3))
    projector = env.projector()
    projector.open()
    projector.close()
    expected = model_state(projector.model)
    env.store.close()
    flip_cache_byte(env.path, offset)
    env.reopen()

    reopened = env.projector()
    reopened.open()
    assert reopened.rebuilds == 1
    assert env.log.opened == 15  # the whole log was replayed
    assert model_state(reopened.model) == expected
    # The bad cache was replaced by a good one.
    again = cache.load(env.store, env.vault, env.store_id)
    assert again is not None and model_state(again[0]) == expected


def test_cache_paired_with_another_cursor_fails_authentication(env: Env) -> None:
    env.append(*some_events(2))
    projector = env.projector()
    projector.open()
    projector.close()
    env.store.close()
    with sqlite3.connect(env.path) as conn:
        conn.execute("UPDATE derived SET committed_cursor = committed_cursor - 1")
    env.reopen()
    assert cache.load(env.store, env.vault, env.store_id) is None
    assert env.store.load_derived(cache.READ_MODEL, env.store_id) is None  # dropped


def test_cache_with_a_malformed_cursor_column_is_dropped(env: Env) -> None:
    env.append(*some_events(1))
    projector = env.projector()
    projector.open()
    projector.close()
    env.store.close()
    with sqlite3.connect(env.path) as conn:
        conn.execute("UPDATE derived SET synced_cursor = 'x'")
    env.reopen()
    reopened = env.projector()
    reopened.open()
    assert reopened.rebuilds == 1
    assert model_state(reopened.model) == model_state(projector.model)


def test_unknown_cache_version_is_rebuilt(env: Env) -> None:
    env.append(*some_events(2))
    projector = env.projector()
    projector.open()
    expected = model_state(projector.model)
    plaintext = b"\xa1av\x18c"  # canonical CBOR {"v": 99}: an authentic but unknown snapshot
    for blob in (
        cache.seal_cache(
            env.vault,
            cache.READ_MODEL,
            env.store_id,
            projector.cursor,
            b"whatever",
            format_version=2,
        ),
        cache.seal_cache(env.vault, cache.READ_MODEL, env.store_id, projector.cursor, plaintext),
    ):
        env.store.save_derived(cache.READ_MODEL, env.store_id, projector.cursor, blob)
        env.reopen()
        again = env.projector()
        again.open()
        assert again.rebuilds == 1 and env.log.opened == 10
        assert model_state(again.model) == expected


def test_cache_of_another_store_is_not_trusted(tmp_path: Path) -> None:
    a = make_env(tmp_path / "a")
    b = make_env(tmp_path / "b")
    try:
        a.append(*some_events(1))
        projector = a.projector()
        projector.open()
        row = a.store.load_derived(cache.READ_MODEL, a.store_id)
        assert row is not None
        # Same vault, another scope: the AAD binds the scope.
        a.store.save_derived(cache.READ_MODEL, "another-scope", row[0], row[1])
        assert cache.load(a.store, a.vault, "another-scope") is None
        # Another vault entirely.
        b.store.save_derived(cache.READ_MODEL, b.store_id, row[0], row[1])
        assert cache.load(b.store, b.vault, b.store_id) is None
    finally:
        a.close()
        b.close()


def test_inv011_remote_event_before_applied_pending_ones_forces_rebuild(tmp_path: Path) -> None:
    """INV-011: device A applied a pending refine; device B archived first (synced earlier)."""
    a = make_env(tmp_path / "a")
    b = a_second_device(a, tmp_path / "b")
    try:
        goal = goal_created("Shared goal")
        project = project_created("Shared project")
        a.append(goal, project, linked(project.aggregate_id, goal.aggregate_id))
        push_all(a, b)  # key records + the three events get global seqs 1..5
        pending_refine = a.append(GoalRefined(goal.aggregate_id, AT, "Offline edit"))[0]
        a.append(ProjectRenamed(project.aggregate_id, AT, "Offline name"))
        projector = a.projector()
        projector.open()
        assert projector.model.conflicts() == []
        view = projector.model.goal(goal.aggregate_id)
        assert view is not None and view.summary == "Offline edit"

        # Device B archives the goal and pushes first: global seq 6, version 2.
        b.append(GoalArchived(goal.aggregate_id, AT))
        remote = next(iter(b.store.pending()))
        # A pulls it: rebase the pending refine to version 3, then insert the remote event.
        a.store.rewrite_pending(
            pending_refine.event_id, 3, a.log.reseal_for_version(pending_refine, 3)
        )
        a.store.insert_remote(as_new(remote), 6)
        assert not a.store.cursor_is_prefix(projector.cursor)

        projector.catch_up()
        assert projector.rebuilds == 2
        fresh = fresh_rebuild(a)
        assert model_state(projector.model) == model_state(fresh.model)
        assert projector.cursor == fresh.cursor == a.store.effective_head()
        conflicts = projector.model.conflicts()
        assert [(c.event_id, c.reason) for c in conflicts] == [
            (pending_refine.event_id, "goal archived")
        ]
        view = projector.model.goal(goal.aggregate_id)
        assert view is not None and view.archived and view.summary == "Shared goal"
        assert projector.model.list_goals(ListGoals()) == []
        renamed = projector.model.project(project.aggregate_id)
        assert renamed is not None and renamed.name == "Offline name"
        assert renamed.version == 3
    finally:
        a.close()
        b.close()


def a_second_device(a: Env, directory: Path) -> Env:
    """Another device of the same store and vault."""
    directory.mkdir(parents=True)
    return Env(directory / "mo.db", a.vault, a.store_id)


def as_new(row: StoredEvent) -> NewEvent:
    return NewEvent(
        row.event_id,
        row.kind,
        row.aggregate_type,
        row.aggregate_id,
        row.version,
        row.key_id,
        row.record,
    )


def push_all(a: Env, b: Env) -> None:
    """A pushes every pending row (global seqs in commit order); B pulls them."""
    head = b.store.effective_head().synced
    for seq, row in enumerate(list(a.store.pending()), start=head + 1):
        a.store.mark_synced(row.event_id, seq)
        b.store.insert_remote(as_new(row), seq)


def test_open_rebuilds_when_the_cached_cursor_is_no_longer_a_prefix(tmp_path: Path) -> None:
    """INV-011 across a restart: the cache predates the reordering."""
    a = make_env(tmp_path / "a")
    b = a_second_device(a, tmp_path / "b")
    try:
        a.append(goal_created("Pending on A"))
        projector = a.projector()
        projector.open()
        projector.close()
        b.append(goal_created("Synced first from B"))
        for seq, row in enumerate(list(b.store.pending()), start=1):
            b.store.mark_synced(row.event_id, seq)
            a.store.insert_remote(as_new(row), seq)
        a.reopen()
        reopened = a.projector()
        reopened.open()
        assert reopened.rebuilds == 1
        assert a.log.opened == 2
        assert len(reopened.model.all_goal_ids()) == 2
        assert (
            reopened.cursor
            == a.store.effective_head()
            == Cursor(2, a.store.effective_head().committed)
        )
    finally:
        a.close()
        b.close()
