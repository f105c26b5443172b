"""Goal rules of DESIGN.md §3 at the domain level."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from domain_samples import AT, GOAL_ID, LATER, a_goal, goal_events, then_goal

from mo_local.domain import goal as g
from mo_local.domain.errors import Conflict, ValidationError
from mo_local.domain.events import (
    DomainEvent,
    GoalAchieved,
    GoalArchived,
    GoalCreated,
    GoalPrioritized,
    GoalRecategorized,
    GoalRefined,
    GoalRescheduled,
    GoalUnachieved,
)
from mo_local.domain.values import Priority, Slice, TargetMonth


def test_create_goal_gives_state() -> None:
    [event] = goal_events()
    assert isinstance(event, GoalCreated)
    goal = a_goal()
    assert goal.id == GOAL_ID
    assert goal.slice is Slice.HEALTH and goal.priority is Priority.MUST
    assert goal.target_month == TargetMonth(2025, 6)
    assert goal.created_at == AT
    assert not goal.achieved and not goal.archived


def test_create_existing_goal_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        g.create_goal(
            a_goal(), goal_id=GOAL_ID, summary="x", slice=Slice.WORK,
            priority=Priority.MAYBE, target_month=TargetMonth(2025, 1), at=AT,
        )


Change = Callable[[g.Goal], list[DomainEvent]]

CHANGES: list[tuple[str, Change, Change, type[DomainEvent]]] = [
    ("summary", lambda s: g.refine_goal(s, "run two marathons", LATER),
     lambda s: g.refine_goal(s, "run a marathon", LATER), GoalRefined),
    ("slice", lambda s: g.recategorize_goal(s, Slice.LEISURE, LATER),
     lambda s: g.recategorize_goal(s, Slice.HEALTH, LATER), GoalRecategorized),
    ("target_month", lambda s: g.reschedule_goal(s, TargetMonth(2026, 1), LATER),
     lambda s: g.reschedule_goal(s, TargetMonth(2025, 6), LATER), GoalRescheduled),
    ("priority", lambda s: g.prioritize_goal(s, Priority.MAYBE, LATER),
     lambda s: g.prioritize_goal(s, Priority.MUST, LATER), GoalPrioritized),
]


@pytest.mark.parametrize(("field", "change", "same", "kind"), CHANGES, ids=[c[0] for c in CHANGES])
def test_change_applies(field: str, change: Change, same: Change, kind: type) -> None:
    goal = a_goal()
    events = change(goal)
    assert [type(e) for e in events] == [kind]
    changed = then_goal(goal, events)
    assert getattr(changed, field) != getattr(goal, field)


@pytest.mark.parametrize(("field", "change", "same", "kind"), CHANGES, ids=[c[0] for c in CHANGES])
def test_change_to_same_value_is_unchanged(
    field: str, change: Change, same: Change, kind: type
) -> None:
    with pytest.raises(ValidationError) as info:
        same(a_goal())
    assert info.value.fields == {field: "unchanged"}


@pytest.mark.parametrize(("field", "change", "same", "kind"), CHANGES, ids=[c[0] for c in CHANGES])
def test_no_change_on_archived_goal(field: str, change: Change, same: Change, kind: type) -> None:
    archived = then_goal(a_goal(), g.archive_goal(a_goal(), LATER))
    with pytest.raises(ValidationError) as info:
        change(archived)
    assert info.value.fields == {"goal": "goal is archived"}


def test_edit_several_fields_gives_several_events() -> None:
    goal = a_goal()
    events = g.edit_goal(
        goal, at=LATER, summary="  swim  ", slice=Slice.HEALTH, priority=Priority.SHOULD,
        target_month=TargetMonth(2025, 9),
    )
    # slice is unchanged and ignored because other fields change
    assert [type(e) for e in events] == [GoalRefined, GoalPrioritized, GoalRescheduled]
    edited = then_goal(goal, events)
    assert (edited.summary, edited.priority, str(edited.target_month)) == (
        "  swim  ", Priority.SHOULD, "2025-09"
    )


def test_edit_with_only_same_values_is_unchanged() -> None:
    with pytest.raises(ValidationError) as info:
        g.edit_goal(a_goal(), at=LATER, slice=Slice.HEALTH, priority=Priority.MUST)
    assert info.value.fields == {"slice": "unchanged", "priority": "unchanged"}


def test_edit_without_fields_is_invalid() -> None:
    with pytest.raises(ValidationError) as info:
        g.edit_goal(a_goal(), at=LATER)
    assert set(info.value.fields) == {"edit"}


def test_edit_archived_goal_is_invalid() -> None:
    archived = then_goal(a_goal(), g.archive_goal(a_goal(), LATER))
    with pytest.raises(ValidationError) as info:
        g.edit_goal(archived, at=LATER, slice=Slice.WORK)
    assert info.value.fields == {"goal": "goal is archived"}


def test_achieve_needs_not_achieved_and_unachieve_needs_achieved() -> None:
    goal = a_goal()
    with pytest.raises(ValidationError) as info:
        g.unachieve_goal(goal, LATER)
    assert info.value.fields == {"goal": "goal is not achieved"}
    achieved = then_goal(goal, g.achieve_goal(goal, LATER))
    assert achieved.achieved and achieved.achieved_at == LATER
    with pytest.raises(ValidationError) as info:
        g.achieve_goal(achieved, LATER)
    assert info.value.fields == {"goal": "goal is already achieved"}
    events = g.unachieve_goal(achieved, LATER)
    assert [type(e) for e in events] == [GoalUnachieved]
    assert not then_goal(achieved, events).achieved


def test_achieve_archived_goal_is_invalid() -> None:
    archived = then_goal(a_goal(), g.archive_goal(a_goal(), LATER))
    with pytest.raises(ValidationError):
        g.achieve_goal(archived, LATER)


def test_archive_is_a_noop_when_archived() -> None:
    goal = a_goal()
    events = g.archive_goal(goal, LATER)
    assert [type(e) for e in events] == [GoalArchived]
    archived = then_goal(goal, events)
    assert archived.archived and archived.archived_at == LATER
    assert g.archive_goal(archived, LATER) == []


def test_goal_repr_hides_summary() -> None:
    """INV-015: domain text stays out of reprs of state and events."""
    goal = a_goal()
    assert "marathon" not in repr(goal)
    assert "marathon" not in repr(goal_events())
    assert GOAL_ID in repr(goal)


def test_achieved_event_carries_time() -> None:
    [event] = g.achieve_goal(a_goal(), LATER)
    assert isinstance(event, GoalAchieved) and event.at == LATER and event.aggregate_id == GOAL_ID
