"""Snapshot codec and cache sealing: round trip, AAD binding, refusal of anything odd."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import cbor2
import pytest
from derived_helpers import (
    AT,
    Env,
    envelope,
    goal_created,
    linked,
    make_env,
    milestone,
    model_state,
    new_id,
    project_created,
)

from mo_local.app.queries import ListGoals
from mo_local.crypto import cbor
from mo_local.crypto.errors import AuthenticationFailed, CryptoError, EncodingError
from mo_local.derived import cache
from mo_local.derived.readmodel import ReadModel
from mo_local.derived.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from mo_local.domain.events import (
    GoalAchieved,
    GoalArchived,
    GoalRefined,
    ProjectArchived,
    ProjectMilestoneArchived,
)
from mo_local.domain.goal import Goal
from mo_local.domain.values import Priority, TargetMonth
from mo_local.eventlog import OpenedEvent
from mo_local.store.records import Cursor, StoredEvent


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def rich_store(env: Env) -> None:
    """Goals and projects in every state, a conflict and an aggregate with no state."""
    goal = goal_created("Achieved goal")
    archived = goal_created("Archived goal")
    project = project_created("With milestones", description="desc ✓ ünïcode")
    m1 = milestone(project.aggregate_id, "M1", date(2025, 4, 1))
    m2 = milestone(project.aggregate_id, "M2", date(2025, 5, 1))
    gone = project_created("Archived project")
    env.append(goal, GoalAchieved(goal.aggregate_id, AT), archived)
    env.append(GoalArchived(archived.aggregate_id, AT), GoalRefined(archived.aggregate_id, AT, "x"))
    env.append(
        project,
        linked(project.aggregate_id, goal.aggregate_id),
        m1,
        m2,
        ProjectMilestoneArchived(project.aggregate_id, AT, m2.milestone_id),
    )
    env.append(gone, ProjectArchived(gone.aggregate_id, AT))
    orphan = new_id()  # only an event that cannot apply: no state, version 1
    env.append_raw("goal", orphan, envelope(GoalRefined(orphan, AT, "no goal yet")))


def test_snapshot_round_trip_keeps_every_state_version_and_conflict(env: Env) -> None:
    rich_store(env)
    projector = env.projector()
    projector.open()
    model = projector.model
    assert len(model.conflicts()) == 2
    data = encode_snapshot(model)
    assert cbor.decode(data, max_size=len(data)) is not None  # canonical CBOR
    restored = decode_snapshot(data)
    assert model_state(restored) == model_state(model)
    assert encode_snapshot(restored) == data
    assert restored.linked_projects(model.all_goal_ids()[0]) == model.linked_projects(
        model.all_goal_ids()[0]
    )
    # Goals are restored without their __init__: each is what the constructor makes.
    goals = [entry.state for _, entry in restored.entries() if isinstance(entry.state, Goal)]
    assert goals
    for goal in goals:
        constructed = Goal(**{f.name: getattr(goal, f.name) for f in dataclasses.fields(Goal)})
        assert vars(goal) == vars(constructed) and goal == constructed
        assert hash(goal) == hash(constructed)
        with pytest.raises(dataclasses.FrozenInstanceError):
            goal.summary = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff",
        cbor2.dumps([1, 2]),
        cbor2.dumps(
            {"v": 2, "applied": 0, "goals": [], "projects": [], "others": [], "conflicts": []}
        ),
        cbor2.dumps({"v": 1, "applied": 0, "goals": [], "projects": [], "others": []}),
        cbor2.dumps(
            {
                "v": 1,
                "applied": 0,
                "goals": [["short"]],
                "projects": [],
                "others": [],
                "conflicts": [],
            }
        ),
        cbor2.dumps(
            {
                "v": 1,
                "applied": 0,
                "goals": [[new_id(), 1, "s", "NoSlice", "must", 2025, 6, AT, None, None]],
                "projects": [],
                "others": [],
                "conflicts": [],
            }
        ),
        cbor2.dumps(
            {
                "v": 1,
                "applied": 0,
                "goals": [[new_id(), 1, "s", "Health", "must", 1999, 6, AT, None, None]],
                "projects": [],
                "others": [],
                "conflicts": [],
            }
        ),
        cbor2.dumps(
            {"v": 1, "applied": "0", "goals": [], "projects": [], "others": [], "conflicts": []}
        ),
    ],
)
def test_decode_refuses_malformed_snapshots_without_quoting_them(body: bytes) -> None:
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(body)
    assert "NoSlice" not in str(info.value)
    error = info.value
    assert error.__cause__ is None  # no library message chained (it could quote content)
    assert error.__context__ is None or error.__suppress_context__


def test_sealed_cache_is_bound_to_name_scope_and_cursor(env: Env) -> None:
    cursor = Cursor(3, 7)
    blob = cache.seal_cache(env.vault, "readmodel", "scope", cursor, b"plaintext")
    assert cache.open_cache(env.vault, "readmodel", "scope", cursor, blob) == b"plaintext"
    for name, scope, other in (
        ("other", "scope", cursor),
        ("readmodel", "elsewhere", cursor),
        ("readmodel", "scope", Cursor(3, 8)),
        ("readmodel", "scope", Cursor(4, 7)),
    ):
        with pytest.raises(AuthenticationFailed):
            cache.open_cache(env.vault, name, scope, other, blob)
    with pytest.raises(EncodingError):
        cache.open_cache(env.vault, "readmodel", "scope", cursor, blob + b"\x00")
    assert b"plaintext" not in blob


def test_load_without_a_cache_is_none_and_writes_nothing(env: Env) -> None:
    assert cache.load(env.store, env.vault, env.store_id) is None
    assert env.store.load_derived(cache.READ_MODEL, env.store_id) is None


def test_save_then_load_round_trips_through_the_store(env: Env) -> None:
    rich_store(env)
    projector = env.projector()
    projector.open()
    cache.save(env.store, env.vault, env.store_id, projector.model, Cursor(0, 99))
    loaded = cache.load(env.store, env.vault, env.store_id)
    assert loaded is not None
    model, cursor = loaded
    assert cursor == Cursor(0, 99)
    assert model_state(model) == model_state(projector.model)


def test_cache_cannot_be_opened_after_lock(env: Env) -> None:
    env.append(goal_created())
    projector = env.projector()
    projector.open()
    env.vault.lock()
    with pytest.raises(CryptoError):
        cache.load(env.store, env.vault, env.store_id)


def test_the_cache_lists_goals_in_list_order_whatever_order_they_were_folded_in() -> None:
    """Goals are written in list order: the bytes do not depend on the fold order,
    and a restored model holds its goals in the order its first list shows them."""
    events = [
        goal_created(f"goal {i}", priority=priority, month=TargetMonth(2027, 1 + i % 12),
                     at=f"2025-01-{1 + i % 28:02d}T00:00:00.000000Z")
        for i, priority in enumerate([Priority.MAYBE, Priority.MUST, Priority.SHOULD] * 7)
    ]
    models = []
    for order in (events, list(reversed(events))):
        model = ReadModel()
        for seq, event in enumerate(order, start=1):
            stored = StoredEvent(seq, seq, new_id(), "event", "goal", event.aggregate_id, 1,
                                 "key", b"")
            model.apply(OpenedEvent(stored, envelope(event)))
        models.append(model)
    first, second = (encode_snapshot(model) for model in models)
    assert first == second
    restored = decode_snapshot(first)
    listed = [view.id for view in restored.list_goals(ListGoals(include_archived=True))]
    held = [aggregate_id for aggregate_id, entry in restored.entries()
            if isinstance(entry.state, Goal)]
    assert held == listed and len(listed) == len(events)
    assert listed == [view.id for view in models[0].list_goals(ListGoals(include_archived=True))]
