"""Total reducers (DESIGN.md §6): invalid events at their position are skipped and reported."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from domain_samples import (
    GOAL_ID,
    LATER,
    MILESTONE_ID,
    OTHER_GOAL_ID,
    PROJECT_ID,
    START,
    TARGET,
    a_goal,
    a_project,
    goal_events,
    one_of_each_event,
    project_events,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.domain import events as e
from mo_local.domain import goal as g
from mo_local.domain import project as p
from mo_local.domain.errors import DomainError, EventRejected, ValidationError
from mo_local.domain.fold import Skip, fold, fold_goal, fold_project, step_any
from mo_local.domain.values import Priority, ProjectStatus, Slice, TargetMonth


def test_valid_history_folds_without_skips() -> None:
    goal = a_goal()
    history = [*goal_events(), *g.refine_goal(goal, "run far", LATER)]
    state, skips = fold("goal", history)
    assert isinstance(state, g.Goal) and state.summary == "run far"
    assert skips == []


def test_offline_edit_after_remote_archive_is_a_conflict_skip() -> None:
    created = goal_events()
    archived = e.GoalArchived(GOAL_ID, LATER)
    edit = e.GoalRefined(GOAL_ID, LATER, "offline edit")
    state, skips = fold_goal([*created, archived, edit])
    assert state is not None and state.archived and state.summary == "run a marathon"
    assert skips == [Skip(edit, "goal archived", True)]


@pytest.mark.parametrize(
    "duplicate",
    [e.GoalAchieved(GOAL_ID, LATER), e.GoalArchived(GOAL_ID, LATER)],
    ids=["achieve", "archive"],
)
def test_harmless_duplicates_are_not_conflicts(duplicate: e.DomainEvent) -> None:
    """Two devices achieving (or archiving) the same goal: a no-op, not a conflict."""
    state, skips = fold_goal([*goal_events(), duplicate, duplicate])
    assert state is not None
    assert len(skips) == 1 and skips[0].event is duplicate
    assert skips[0].is_conflict is False


def test_same_value_change_is_a_harmless_skip_with_a_rule_name() -> None:
    same = e.GoalRecategorized(GOAL_ID, LATER, Slice.HEALTH)
    _state, skips = fold_goal([*goal_events(), same])
    assert skips == [Skip(same, "slice unchanged", False)]


def test_events_before_creation_and_foreign_events_are_skipped() -> None:
    early = e.GoalRefined(GOAL_ID, LATER, "too early")
    foreign = e.ProjectArchived(PROJECT_ID, LATER)
    other_goal = e.GoalAchieved(OTHER_GOAL_ID, LATER)
    state, skips = fold_goal([early, *goal_events(), foreign, other_goal])
    assert state is not None and not state.achieved
    assert [(s.reason, s.is_conflict) for s in skips] == [
        ("goal missing", True), ("not a goal event", True), ("other aggregate", True)
    ]


def test_project_conflicts() -> None:
    created = project_events()
    add = e.ProjectMilestoneAdded(PROJECT_ID, LATER, MILESTONE_ID, "m", date(2025, 4, 1))
    shrink = e.ProjectRescheduled(PROJECT_ID, LATER, date(2025, 5, 1), TARGET)
    outside = e.ProjectMilestoneAdded(PROJECT_ID, LATER, GOAL_ID, "late", date(2026, 1, 1))
    link = e.ProjectGoalAdded(PROJECT_ID, LATER, GOAL_ID)
    link_other = e.ProjectGoalAdded(PROJECT_ID, LATER, OTHER_GOAL_ID)
    unlink_other = e.ProjectGoalRemoved(PROJECT_ID, LATER, OTHER_GOAL_ID)
    unlink = e.ProjectGoalRemoved(PROJECT_ID, LATER, GOAL_ID)
    state, skips = fold_project(
        [*created, add, shrink, outside, link, link_other, unlink_other, unlink, unlink]
    )
    assert state is not None and state.goal_id is None and state.start_date == START
    assert [(s.event, s.reason, s.is_conflict) for s in skips] == [
        (shrink, "milestone outside dates", True),
        (outside, "milestone outside dates", True),
        (link_other, "project linked", True),
        (unlink_other, "linked to another goal", True),
        (unlink, "project not linked", False),
    ]


def test_created_twice_and_inverted_dates_are_skipped() -> None:
    created = project_events()
    inverted = e.ProjectCreated(PROJECT_ID, LATER, "x", TARGET, START, "")
    state, skips = fold_project([inverted, *created, created[0]])
    assert state is not None and state.created_at == created[0].at
    assert [s.reason for s in skips] == ["start after target", "project exists"]


def test_reducers_raise_domain_errors_but_fold_does_not() -> None:
    achieved = g.evolve_goal(a_goal(), e.GoalAchieved(GOAL_ID, LATER))
    with pytest.raises(EventRejected) as info:
        g.evolve_goal(achieved, e.GoalAchieved(GOAL_ID, LATER))
    assert (info.value.reason, info.value.is_conflict) == ("goal achieved", False)
    with pytest.raises(DomainError):
        p.evolve_project(None, e.ProjectArchived(PROJECT_ID, LATER))
    state, skips = fold_project([e.ProjectArchived(PROJECT_ID, LATER)])
    assert state is None and [s.reason for s in skips] == ["project missing"]
    with pytest.raises(ValidationError):
        fold("milestone", [])


def test_step_any_for_incremental_projections() -> None:
    state, skip = step_any("project", None, project_events()[0])
    assert isinstance(state, p.Project) and skip is None
    same, skip = step_any("project", state, project_events()[0])
    assert same is state and skip is not None and skip.reason == "project exists"
    with pytest.raises(ValidationError):
        step_any("goal", state, goal_events()[0])


# --- property tests ------------------------------------------------------------------

_days = st.integers(min_value=0, max_value=200).map(lambda n: date(2025, 1, 1) + timedelta(n))
_ids = st.sampled_from([MILESTONE_ID, "66666666-6666-4666-8666-666666666666"])
_goals = st.sampled_from([GOAL_ID, OTHER_GOAL_ID])


def _project_op(draw: st.DrawFn, state: p.Project) -> list[e.DomainEvent]:
    at = LATER
    choice = draw(st.integers(min_value=0, max_value=11))
    if choice == 0:
        return p.rename_project(state, draw(st.sampled_from(["a", "b"])), at)
    if choice == 1:
        return p.describe_project(state, draw(st.sampled_from(["", "x"])), at)
    if choice == 2:
        return p.reschedule_project(state, draw(_days), draw(_days), at)
    if choice == 3:
        return p.transition_status(state, draw(st.sampled_from(list(ProjectStatus))), at)
    if choice == 4:
        return p.link_to_goal(state, draw(_goals), at)
    if choice == 5:
        return p.unlink_from_goal(state, at)
    if choice == 6:
        return p.add_milestone(
            state, milestone_id=draw(_ids), name="m", target_date=draw(_days), at=at
        )
    if choice == 7:
        return p.rename_milestone(state, draw(_ids), draw(st.sampled_from(["m", "n"])), at)
    if choice == 8:
        return p.reschedule_milestone(state, draw(_ids), draw(_days), at)
    if choice == 9:
        return p.archive_milestone(state, draw(_ids), at)
    if choice == 10:
        return p.edit_project(state, at=at, name="c", target_date=draw(_days))
    return p.archive_project(state, at) if draw(st.integers(0, 3)) == 0 else []


def _goal_op(draw: st.DrawFn, state: g.Goal) -> list[e.DomainEvent]:
    at = LATER
    choice = draw(st.integers(min_value=0, max_value=7))
    if choice == 0:
        return g.refine_goal(state, draw(st.sampled_from(["a", "b"])), at)
    if choice == 1:
        return g.recategorize_goal(state, draw(st.sampled_from(list(Slice))), at)
    if choice == 2:
        return g.reschedule_goal(state, TargetMonth(2025, draw(st.integers(1, 12))), at)
    if choice == 3:
        return g.prioritize_goal(state, draw(st.sampled_from(list(Priority))), at)
    if choice == 4:
        return g.achieve_goal(state, at)
    if choice == 5:
        return g.unachieve_goal(state, at)
    if choice == 6:
        return g.edit_goal(state, at=at, summary="z", priority=Priority.MAYBE)
    return g.archive_goal(state, at) if draw(st.integers(0, 3)) == 0 else []


@st.composite
def histories(draw: st.DrawFn) -> tuple[str, list[e.DomainEvent]]:
    """A valid history built through the decision functions (rejected commands dropped)."""
    kind = draw(st.sampled_from(["goal", "project"]))
    events: list[e.DomainEvent] = list(goal_events() if kind == "goal" else project_events())
    goal_state: g.Goal = a_goal()
    project_state: p.Project = a_project()
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        try:
            if kind == "goal":
                new = _goal_op(draw, goal_state)
                for event in new:
                    goal_state = g.evolve_goal(goal_state, event)
            else:
                new = _project_op(draw, project_state)
                for event in new:
                    project_state = p.evolve_project(project_state, event)
        except DomainError:
            continue
        events.extend(new)
    return kind, events


@settings(max_examples=200, deadline=None)
@given(history=histories(), data=st.data())
def test_fold_of_any_permutation_is_total_and_deterministic(
    history: tuple[str, list[e.DomainEvent]], data: st.DataObject
) -> None:
    kind, events = history
    state, skips = fold(kind, events)
    assert skips == []  # a history the decisions produced replays cleanly
    assert state is not None
    permuted = data.draw(st.permutations(events))
    first = fold(kind, permuted)
    second = fold(kind, list(permuted))
    assert first == second
    permuted_state, permuted_skips = first
    assert all(s.reason and isinstance(s.is_conflict, bool) for s in permuted_skips)
    assert all(s.event in permuted for s in permuted_skips)
    if permuted[0] is not events[0]:
        # The creation no longer comes first: something before it was skipped.
        assert permuted_skips
    assert permuted_state is not None  # the creation is applied wherever it lands


@settings(max_examples=100, deadline=None)
@given(events=st.lists(st.sampled_from(one_of_each_event()), max_size=30))
def test_fold_of_arbitrary_event_lists_never_raises(events: list[e.DomainEvent]) -> None:
    for kind in ("goal", "project"):
        state, skips = fold(kind, events)
        assert len(skips) <= len(events)
        assert fold(kind, events) == (state, skips)
