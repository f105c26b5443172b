"""Projector.follow: writers that hold the plaintext fold what they just wrote.

The result must be exactly what catching up from the log gives; anything that
visibly does not follow the cursor is refused whole, so the caller falls back
to `catch_up` (which rebuilds when the order changed, INV-011).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from derived_helpers import (
    AT,
    Env,
    goal_created,
    linked,
    make_env,
    milestone,
    model_state,
    project_created,
)

from mo_local.domain.events import GoalArchived, GoalRefined, ProjectArchived
from mo_local.eventlog import OpenedEvent
from mo_local.store.records import Cursor, StoredEvent


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def opened(env: Env, rows: list[StoredEvent]) -> list[OpenedEvent]:
    """The rows as the store now holds them (with their sequences), decrypted."""
    by_id = {r.event_id: r for r in env.store.read_commit_order()}
    return list(env.log.opened_rows(by_id[r.event_id] for r in rows))


def test_following_appended_events_equals_catching_up(env: Env) -> None:
    goal = goal_created("Run a marathon")
    env.append(goal)
    follower, reader = env.projector(), env.projector()
    follower.open()
    reader.open()
    assert follower.covers_all()
    project = project_created("Training plan")
    written = env.append(
        project,
        linked(project.aggregate_id, goal.aggregate_id),
        milestone(project.aggregate_id, "Half distance", project.target_date),
        ProjectArchived(project.aggregate_id, AT),
        GoalArchived(goal.aggregate_id, AT),
        GoalRefined(goal.aggregate_id, AT, "Edited after archiving"),  # a conflict
    )
    opened_before = env.log.opened
    events = opened(env, written)
    assert follower.follow([e for e in events])
    assert env.log.opened - opened_before == len(events)  # only the test's own decryption
    reader.catch_up()
    assert model_state(follower.model) == model_state(reader.model)
    assert follower.model.conflicts() == reader.model.conflicts() != []
    assert follower.cursor == reader.cursor == env.store.effective_head()
    assert follower.covers_all() and reader.covers_all()
    assert follower.search("Training") == reader.search("Training")


def test_synced_events_follow_by_global_sequence(env: Env) -> None:
    first = env.append(goal_created("One"))
    for seq, row in enumerate(first, start=1):
        env.store.mark_synced(row.event_id, seq)
    follower = env.projector()
    follower.open()
    later = env.append(goal_created("Two"), goal_created("Three"))
    for seq, row in enumerate(later, start=len(first) + 1):
        env.store.mark_synced(row.event_id, seq)
    assert follower.follow(opened(env, later))
    assert follower.cursor.synced == len(first) + len(later)
    assert follower.covers_all()  # the key records stay pending: they are not folded
    summaries = sorted(follower.model.goal(g).summary for g in follower.model.all_goal_ids())
    assert summaries == ["One", "Three", "Two"]


def test_events_that_do_not_follow_are_refused_whole(env: Env) -> None:
    follower = env.projector()
    follower.open()
    written = env.append(goal_created("One"), goal_created("Two"))
    events = opened(env, written)
    assert len(events) == 2  # key records are installed, not folded
    assert follower.follow(events[:1])
    before = (model_state(follower.model), follower.cursor)
    # Already applied (commit seqs at or below the cursor): nothing is applied.
    assert not follower.follow(events)
    assert (model_state(follower.model), follower.cursor) == before
    assert not follower.covers_all()
    follower.catch_up()
    assert follower.covers_all()


def test_a_synced_event_below_the_synced_cursor_is_refused(env: Env) -> None:
    rows = env.append(goal_created("One"), goal_created("Two"))
    first, second = opened(env, rows)
    env.store.mark_synced(first.stored.event_id, 5)
    env.store.mark_synced(second.stored.event_id, 3)
    five, three = opened(env, [first.stored, second.stored])
    follower = env.projector()
    assert follower.follow([five])
    assert not follower.follow([three])  # sequence 3 sorts before what is applied
    assert follower.cursor.synced == 5


def test_a_state_folded_in_a_fork_is_adopted_only_if_it_ends_where_expected(env: Env) -> None:
    rows = env.append(goal_created("One"), goal_created("Two"), goal_created("Three"))
    events = opened(env, rows)
    for seq, event in enumerate(events, start=1):
        env.store.mark_synced(event.stored.event_id, seq)
    synced = opened(env, [e.stored for e in events])
    child, parent, reader = env.projector(), env.projector(), env.projector()
    child.fold_in_fork(synced)  # stands in for the forked copy
    state = child.forked_state()
    before = model_state(parent.model)
    assert not parent.adopt_forked(state, Cursor(2, 0))
    assert not parent.adopt_forked(b"not a state", Cursor(3, 0))
    assert model_state(parent.model) == before
    assert parent.adopt_forked(state, Cursor(3, 0))
    reader.catch_up()
    assert model_state(parent.model) == model_state(reader.model)
    assert parent.cursor.synced == 3
    with pytest.raises(ValueError):
        child.fold_in_fork(synced[:1])  # not after its cursor
