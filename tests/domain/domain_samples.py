"""Builders shared by the domain tests: fixed ids and times, states built through events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from mo_local.domain import goal as g
from mo_local.domain import project as p
from mo_local.domain.events import DomainEvent
from mo_local.domain.values import Priority, Slice, TargetMonth

AT = "2025-01-01T00:00:00.000000Z"
LATER = "2025-02-01T00:00:00.000000Z"
GOAL_ID = "11111111-1111-4111-8111-111111111111"
OTHER_GOAL_ID = "22222222-2222-4222-8222-222222222222"
PROJECT_ID = "33333333-3333-4333-8333-333333333333"
MILESTONE_ID = "44444444-4444-4444-8444-444444444444"
OTHER_MILESTONE_ID = "55555555-5555-4555-8555-555555555555"
START = date(2025, 3, 1)
TARGET = date(2025, 6, 30)


def goal_events() -> list[DomainEvent]:
    """Create a goal: Health, must, 2025-06, summary 'run a marathon'."""
    return g.create_goal(
        None,
        goal_id=GOAL_ID,
        summary="run a marathon",
        slice=Slice.HEALTH,
        priority=Priority.MUST,
        target_month=TargetMonth(2025, 6),
        at=AT,
    )


def goal_from(events: Sequence[DomainEvent]) -> g.Goal:
    state: g.Goal | None = None
    for event in events:
        state = g.evolve_goal(state, event)
    assert state is not None
    return state


def a_goal() -> g.Goal:
    return goal_from(goal_events())


def project_events(goal_id: str | None = None) -> list[DomainEvent]:
    """Create a project 'build a shed' from START to TARGET."""
    return p.create_project(
        None,
        project_id=PROJECT_ID,
        name="build a shed",
        start_date=START,
        target_date=TARGET,
        description="wood and nails",
        at=AT,
        goal_id=goal_id,
    )


def project_from(events: Sequence[DomainEvent]) -> p.Project:
    state: p.Project | None = None
    for event in events:
        state = p.evolve_project(state, event)
    assert state is not None
    return state


def a_project(goal_id: str | None = None) -> p.Project:
    return project_from(project_events(goal_id))


def then(state: p.Project, events: Sequence[DomainEvent]) -> p.Project:
    current = state
    for event in events:
        current = p.evolve_project(current, event)
    return current


def then_goal(state: g.Goal, events: Sequence[DomainEvent]) -> g.Goal:
    current = state
    for event in events:
        current = g.evolve_goal(current, event)
    return current


def one_of_each_event() -> list[DomainEvent]:
    """One valid-looking instance of every event type (not a coherent history)."""
    from mo_local.domain import events as e
    from mo_local.domain.values import ProjectStatus

    return [
        e.GoalCreated(GOAL_ID, AT, "summary ü", Slice.WORK, Priority.SHOULD, TargetMonth(2030, 2)),
        e.GoalRefined(GOAL_ID, AT, "new summary"),
        e.GoalRecategorized(GOAL_ID, AT, Slice.MONEY),
        e.GoalRescheduled(GOAL_ID, AT, TargetMonth(2031, 12)),
        e.GoalPrioritized(GOAL_ID, AT, Priority.MAYBE),
        e.GoalAchieved(GOAL_ID, AT),
        e.GoalUnachieved(GOAL_ID, AT),
        e.GoalArchived(GOAL_ID, AT),
        e.ProjectCreated(PROJECT_ID, AT, "name", START, TARGET, "description"),
        e.ProjectStatusTransitioned(PROJECT_ID, AT, ProjectStatus.IN_PROGRESS),
        e.ProjectRescheduled(PROJECT_ID, AT, START, date(2025, 12, 31)),
        e.ProjectRenamed(PROJECT_ID, AT, "renamed"),
        e.ProjectDescribed(PROJECT_ID, AT, ""),
        e.ProjectGoalAdded(PROJECT_ID, AT, GOAL_ID),
        e.ProjectGoalRemoved(PROJECT_ID, AT, GOAL_ID),
        e.ProjectMilestoneAdded(PROJECT_ID, AT, MILESTONE_ID, "milestone", START),
        e.ProjectMilestoneRenamed(PROJECT_ID, AT, MILESTONE_ID, "milestone 2"),
        e.ProjectMilestoneRescheduled(PROJECT_ID, AT, MILESTONE_ID, TARGET),
        e.ProjectMilestoneArchived(PROJECT_ID, AT, MILESTONE_ID),
        e.ProjectArchived(PROJECT_ID, AT),
    ]
