"""Read model: queries, filters, list order, the goal index, conflicts (real store and crypto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from derived_helpers import (
    AT,
    Env,
    envelope,
    goal_created,
    linked,
    make_env,
    milestone,
    new_id,
    project_created,
)

from mo_local.app.queries import ListGoals, ListProjects
from mo_local.derived.conflicts import OTHER_AGGREGATE, UNKNOWN_AGGREGATE_TYPE, UNREADABLE_EVENT
from mo_local.derived.projector import Projector
from mo_local.domain.events import (
    GOAL,
    PROJECT,
    GoalAchieved,
    GoalArchived,
    GoalRefined,
    ProjectArchived,
    ProjectGoalRemoved,
    ProjectMilestoneArchived,
    ProjectStatusTransitioned,
)
from mo_local.domain.goal import Goal
from mo_local.domain.values import Priority, ProjectStatus, Slice, TargetMonth
from mo_local.eventlog import Envelope

LATER = "2025-03-04T05:06:07.000000Z"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def opened(env: Env) -> Projector:
    projector = env.projector()
    projector.open()
    return projector


def test_list_goals_filters_and_hides_archived(env: Env) -> None:
    health = goal_created("Run", Slice.HEALTH, Priority.MUST, TargetMonth(2025, 6))
    work = goal_created("Ship", Slice.WORK, Priority.SHOULD, TargetMonth(2025, 7))
    gone = goal_created("Old", Slice.WORK, Priority.MAYBE, TargetMonth(2025, 7))
    env.append(health, work, gone, GoalArchived(gone.aggregate_id, AT))
    model = opened(env).model

    def ids(query: ListGoals) -> set[str]:
        return {view.id for view in model.list_goals(query)}

    assert ids(ListGoals()) == {health.aggregate_id, work.aggregate_id}
    assert ids(ListGoals(include_archived=True)) == {
        health.aggregate_id,
        work.aggregate_id,
        gone.aggregate_id,
    }
    assert ids(ListGoals(slice="work")) == {work.aggregate_id}
    assert ids(ListGoals(slice="work", include_archived=True)) == {
        work.aggregate_id,
        gone.aggregate_id,
    }
    assert ids(ListGoals(priority="must")) == {health.aggregate_id}
    assert ids(ListGoals(month="2025-07")) == {work.aggregate_id}
    assert ids(ListGoals(month="2025-08")) == set()


def test_goal_list_order_priority_then_month_then_created_then_id(env: Env) -> None:
    early = "2025-01-01T00:00:00.000000Z"
    a = goal_created("a", priority=Priority.MAYBE, month=TargetMonth(2025, 1))
    b = goal_created("b", priority=Priority.MUST, month=TargetMonth(2025, 9))
    c = goal_created("c", priority=Priority.MUST, month=TargetMonth(2025, 2), at=AT)
    d = goal_created("d", priority=Priority.MUST, month=TargetMonth(2025, 2), at=early)
    e = goal_created("e", priority=Priority.SHOULD, month=TargetMonth(2024, 12))
    # Same priority, month and creation time: the id decides.
    f1 = goal_created("f", priority=Priority.SHOULD, month=TargetMonth(2025, 1), goal_id=new_id())
    f2 = goal_created("f", priority=Priority.SHOULD, month=TargetMonth(2025, 1), goal_id=new_id())
    env.append(a, b, c, d, e, f1, f2)
    listed = [view.id for view in opened(env).model.list_goals(ListGoals())]
    f_first, f_second = sorted([f1.aggregate_id, f2.aggregate_id])
    assert listed == [
        d.aggregate_id,
        c.aggregate_id,
        b.aggregate_id,
        e.aggregate_id,
        f_first,
        f_second,
        a.aggregate_id,
    ]


def test_list_projects_filters_by_goal_unlinked_status_and_archived(env: Env) -> None:
    goal = goal_created()
    other = goal_created("Other")
    linked_p = project_created("Linked")
    other_p = project_created("Elsewhere")
    free = project_created("Free")
    done = project_created("Done")
    gone = project_created("Gone")
    env.append(goal, other)
    env.append(linked_p, linked(linked_p.aggregate_id, goal.aggregate_id))
    env.append(other_p, linked(other_p.aggregate_id, other.aggregate_id))
    env.append(free)
    env.append(done, ProjectStatusTransitioned(done.aggregate_id, AT, ProjectStatus.COMPLETED))
    env.append(gone, linked(gone.aggregate_id, goal.aggregate_id))
    env.append(ProjectArchived(gone.aggregate_id, AT))
    model = opened(env).model

    def ids(query: ListProjects) -> set[str]:
        return {view.id for view in model.list_projects(query)}

    assert ids(ListProjects()) == {
        linked_p.aggregate_id,
        other_p.aggregate_id,
        free.aggregate_id,
        done.aggregate_id,
    }
    assert ids(ListProjects(goal_id=goal.aggregate_id)) == {linked_p.aggregate_id}
    assert ids(ListProjects(goal_id=goal.aggregate_id, include_archived=True)) == {
        linked_p.aggregate_id,
        gone.aggregate_id,
    }
    assert ids(ListProjects(unlinked=True)) == {free.aggregate_id, done.aggregate_id}
    assert ids(ListProjects(status="completed")) == {done.aggregate_id}
    assert ids(ListProjects(status="in_progress")) == set()


def test_project_list_order_target_date_then_name_then_id(env: Env) -> None:
    late = project_created("alpha", target=date(2025, 9, 1))
    soon_b = project_created("Bravo", target=date(2025, 5, 1))
    soon_a = project_created("alpha", target=date(2025, 5, 1))
    twin1 = project_created("same", target=date(2025, 7, 1))
    twin2 = project_created("same", target=date(2025, 7, 1))
    env.append(late, soon_b, soon_a, twin1, twin2)
    listed = [view.id for view in opened(env).model.list_projects(ListProjects())]
    first_twin, second_twin = sorted([twin1.aggregate_id, twin2.aggregate_id])
    assert listed == [
        soon_a.aggregate_id,
        soon_b.aggregate_id,
        first_twin,
        second_twin,
        late.aggregate_id,
    ]


def test_views_match_cli_shapes_and_goal_lists_active_linked_projects(env: Env) -> None:
    goal = goal_created("Get fit")
    active = project_created("Gym", description="three times a week")
    archived = project_created("Pool")
    moved = project_created("Bike")
    env.append(goal)
    m1 = milestone(active.aggregate_id, "First month", date(2025, 4, 1))
    m2 = milestone(active.aggregate_id, "Dropped", date(2025, 5, 1))
    env.append(
        active,
        linked(active.aggregate_id, goal.aggregate_id),
        m1,
        m2,
        ProjectMilestoneArchived(active.aggregate_id, AT, m2.milestone_id),
    )
    env.append(archived, linked(archived.aggregate_id, goal.aggregate_id))
    env.append(ProjectArchived(archived.aggregate_id, AT))
    env.append(moved, linked(moved.aggregate_id, goal.aggregate_id))
    env.append(ProjectGoalRemoved(moved.aggregate_id, AT, goal.aggregate_id))
    model = opened(env).model

    view = model.goal(goal.aggregate_id)
    assert view is not None
    assert view.to_json() == {
        "id": goal.aggregate_id,
        "summary": "Get fit",
        "slice": "Health",
        "priority": "must",
        "target_month": "2025-06",
        "achieved": False,
        "archived": False,
        "created_at": AT,
        "version": 1,
        "project_ids": [active.aggregate_id],
    }
    project = model.project(active.aggregate_id)
    assert project is not None
    assert project.to_json() == {
        "id": active.aggregate_id,
        "name": "Gym",
        "status": "planned",
        "start_date": "2025-03-01",
        "target_date": "2025-06-30",
        "description": "three times a week",
        "goal_id": goal.aggregate_id,
        "milestones": [{"id": m1.milestone_id, "name": "First month", "target_date": "2025-04-01"}],
        "archived": False,
        "created_at": AT,
        "version": 5,
    }
    assert model.goal(active.aggregate_id) is None  # a project is not a goal
    assert model.project(goal.aggregate_id) is None
    assert model.goal(new_id()) is None


def test_goal_view_follows_project_changes_after_it_was_listed(env: Env) -> None:
    goal = goal_created()
    project = project_created()
    env.append(goal, project, linked(project.aggregate_id, goal.aggregate_id))
    projector = opened(env)
    first = projector.model.goal(goal.aggregate_id)
    assert first is not None and first.project_ids == (project.aggregate_id,)
    env.append(ProjectArchived(project.aggregate_id, AT))
    projector.catch_up()
    after = projector.model.goal(goal.aggregate_id)
    assert after is not None and after.project_ids == ()


def test_state_and_goal_index(env: Env) -> None:
    goal = goal_created()
    done = project_created("Done")
    gone = project_created("Gone")
    env.append(goal)
    env.append(done, linked(done.aggregate_id, goal.aggregate_id))
    env.append(ProjectStatusTransitioned(done.aggregate_id, AT, ProjectStatus.COMPLETED))
    env.append(
        gone, linked(gone.aggregate_id, goal.aggregate_id), ProjectArchived(gone.aggregate_id, AT)
    )
    env.append(GoalAchieved(goal.aggregate_id, AT), GoalAchieved(goal.aggregate_id, LATER))
    model = opened(env).model

    state = model.state(goal.aggregate_id)
    assert state is not None
    assert state.aggregate_type == GOAL
    assert isinstance(state.state, Goal) and state.state.achieved
    assert state.version == 3  # the skipped second achieve still counts
    assert state.version == env.store.current_version(goal.aggregate_id)
    project_state = model.state(gone.aggregate_id)
    assert project_state is not None and project_state.aggregate_type == PROJECT
    assert model.state(new_id()) is None
    assert model.linked_projects(goal.aggregate_id) == sorted(
        [(done.aggregate_id, "completed", False), (gone.aggregate_id, "planned", True)]
    )
    assert model.linked_projects(new_id()) == []
    assert model.all_goal_ids() == [goal.aggregate_id]


def test_refine_after_archive_is_a_conflict_and_double_achieve_is_not(env: Env) -> None:
    archived = goal_created("Archived")
    achieved = goal_created("Achieved")
    env.append(archived, GoalArchived(archived.aggregate_id, AT))
    refine = env.append(GoalRefined(archived.aggregate_id, LATER, "Too late"))[0]
    env.append(achieved, GoalAchieved(achieved.aggregate_id, AT))
    env.append(GoalAchieved(achieved.aggregate_id, LATER))
    model = opened(env).model

    conflicts = model.conflicts()
    assert [c.to_json() for c in conflicts] == [
        {
            "event_id": refine.event_id,
            "aggregate_id": archived.aggregate_id,
            "reason": "goal archived",
            "at": LATER,
        }
    ]
    view = model.goal(archived.aggregate_id)
    assert view is not None and view.summary == "Archived"


def test_conflict_records_carry_no_domain_text(env: Env) -> None:
    canary = "CANARY-summary-7f3a"
    goal = goal_created(canary)
    env.append(
        goal, GoalArchived(goal.aggregate_id, AT), GoalRefined(goal.aggregate_id, AT, canary + "!")
    )
    conflicts = opened(env).model.conflicts()
    assert len(conflicts) == 1
    assert "CANARY" not in repr(conflicts) and "CANARY" not in str(conflicts[0].to_json())


def test_unknown_event_type_from_a_newer_app_is_a_conflict_not_an_error(env: Env) -> None:
    goal = goal_created("Keep")
    env.append(goal)
    future = Envelope(
        "GoalTeleported",
        1,
        {"aggregate_id": goal.aggregate_id, "at": AT},
        AT,
        "tester",
        env.device_id,
    )
    newer = Envelope(
        "GoalRefined", 9, {"aggregate_id": goal.aggregate_id, "at": AT}, AT, "tester", env.device_id
    )
    broken = Envelope("GoalRefined", 1, {"aggregate_id": goal.aggregate_id}, AT, "t", "d")
    skipped = [env.append_raw(GOAL, goal.aggregate_id, e) for e in (future, newer, broken)]
    env.append(GoalRefined(goal.aggregate_id, AT, "Still works"))
    model = opened(env).model

    assert [(c.event_id, c.reason) for c in model.conflicts()] == [
        (s.event_id, UNREADABLE_EVENT) for s in skipped
    ]
    view = model.goal(goal.aggregate_id)
    assert view is not None and view.summary == "Still works" and view.version == 5


def test_event_of_another_aggregate_or_unknown_type_is_skipped(env: Env) -> None:
    goal = goal_created("Mine")
    stranger = goal_created("Stranger")
    env.append(goal)
    wrong = env.append_raw(
        GOAL, goal.aggregate_id, envelope(GoalRefined(stranger.aggregate_id, AT, "x"))
    )
    habit_id = new_id()
    habit = env.append_raw("habit", habit_id, envelope(goal_created("h", goal_id=habit_id)))
    model = opened(env).model
    assert [(c.event_id, c.reason) for c in model.conflicts()] == [
        (wrong.event_id, OTHER_AGGREGATE),
        (habit.event_id, UNKNOWN_AGGREGATE_TYPE),
    ]
    state = model.state(habit_id)
    assert state is not None and state.state is None and state.version == 1
    assert model.all_goal_ids() == [goal.aggregate_id]
