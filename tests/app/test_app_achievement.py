"""The goal-achievement process manager (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from app_fakes import InMemoryEventLog
from app_scenario import ACTOR, Scenario

from mo_local.app import commands as c
from mo_local.app.achievement import ACHIEVEMENT_ACTOR, achievement_key, goals_to_react
from mo_local.app.ports import CommandResult, EventMeta
from mo_local.domain.errors import ConcurrencyError
from mo_local.domain.events import (
    DomainEvent,
    GoalRefined,
    ProjectDescribed,
    ProjectGoalAdded,
    ProjectGoalRemoved,
    ProjectStatusTransitioned,
)
from mo_local.domain.fold import fold_project
from mo_local.domain.values import ProjectStatus


def achieved(s: Scenario, goal_id: str) -> bool:
    goal, _ = s.handler.load_goal(goal_id)
    assert goal is not None
    return goal.achieved


def count_events(s: Scenario, goal_id: str, event_type: str) -> int:
    return sum(
        1 for r in s.log.rows if r.aggregate_id == goal_id and r.event_type == event_type
    )


def test_all_linked_projects_completed_achieves_the_goal() -> None:
    s = Scenario()
    goal_id = s.goal()
    first, second = s.project(goal_id), s.project(goal_id)
    s.status(first, "completed")
    assert s.achievement.react([goal_id]) == []
    assert not achieved(s, goal_id)
    s.status(second, "completed")
    [result] = s.achievement.react([goal_id])
    assert result.aggregate_id == goal_id
    assert achieved(s, goal_id)
    row = s.log.rows[-1]
    assert (row.event_type, row.meta.actor) == ("GoalAchieved", ACHIEVEMENT_ACTOR)


def test_a_new_incomplete_linked_project_unachieves_the_goal() -> None:
    s = Scenario()
    goal_id = s.goal()
    s.status(s.project(goal_id), "completed")
    s.achievement.react([goal_id])
    assert achieved(s, goal_id)
    s.project(goal_id)
    s.achievement.react([goal_id])
    assert not achieved(s, goal_id)
    assert count_events(s, goal_id, "GoalUnachieved") == 1


def test_archived_projects_do_not_count() -> None:
    s = Scenario()
    goal_id = s.goal()
    done, stalled = s.project(goal_id), s.project(goal_id)
    s.status(done, "completed")
    s.status(stalled, "in_progress")
    s.achievement.react([goal_id])
    assert not achieved(s, goal_id)
    s.archive_project(stalled)
    s.achievement.react([goal_id])
    assert achieved(s, goal_id)
    # Archiving the last active project leaves nothing to decide: the goal stays.
    s.archive_project(done)
    assert s.achievement.react([goal_id]) == []
    assert achieved(s, goal_id)


def test_two_completions_give_exactly_one_achieve() -> None:
    s = Scenario()
    goal_id = s.goal()
    first, second = s.project(goal_id), s.project(goal_id)
    s.status(first, "completed")
    s.status(second, "completed")
    # Both project events make the goal a candidate, twice over.
    s.achievement.react([goal_id, goal_id])
    s.achievement.react([goal_id])
    assert count_events(s, goal_id, "GoalAchieved") == 1


def test_replay_writes_nothing_new() -> None:
    s = Scenario()
    goal_id = s.goal()
    s.status(s.project(goal_id), "completed")
    assert len(s.achievement.react([goal_id])) == 1
    appends, rows = s.log.appends, len(s.log.rows)
    assert s.achievement.react([goal_id]) == []
    assert s.achievement.reconcile_all() == []
    assert (s.log.appends, len(s.log.rows)) == (appends, rows)


def test_dispatch_uses_the_deterministic_idempotency_key() -> None:
    s = Scenario()
    goal_id = s.goal()
    s.status(s.project(goal_id), "completed")
    [result] = s.achievement.react([goal_id])
    key = achievement_key(goal_id, 1, True)
    assert key == f"achievement:{goal_id}:1:true"
    assert s.log.idempotency[key][1] == result
    # The same decision dispatched again (a restart mid-way) returns the first result.
    replay = c.AchieveGoal(aggregate_id=goal_id, actor=ACHIEVEMENT_ACTOR, at=s.now(),
                           known_version=1, idempotency_key=key)
    appends = s.log.appends
    assert s.handler.handle(replay) == result
    assert s.log.appends == appends


def test_reconcile_fixes_goals_whose_state_disagrees() -> None:
    s = Scenario()
    finished, unfinished, alone, archived_goal = s.goal(), s.goal(), s.goal(), s.goal()
    s.status(s.project(finished), "completed")  # nobody reacted: should be achieved
    s.project(unfinished)
    s.run(c.AchieveGoal(aggregate_id=unfinished, actor=ACTOR, at=s.now()))  # wrongly achieved
    s.run(c.AchieveGoal(aggregate_id=alone, actor=ACTOR, at=s.now()))  # by hand, no projects
    s.status(s.project(archived_goal), "completed")
    s.run(c.ArchiveGoal(aggregate_id=archived_goal, actor=ACTOR, at=s.now()))
    results = s.achievement.reconcile_all()
    assert sorted(r.aggregate_id for r in results) == sorted([finished, unfinished])
    assert achieved(s, finished) and not achieved(s, unfinished)
    assert achieved(s, alone)
    assert not achieved(s, archived_goal)
    assert s.achievement.reconcile_all() == []


def test_moving_a_project_reacts_on_both_goals() -> None:
    s = Scenario()
    old_goal, new_goal = s.goal(), s.goal()
    project_id = s.project(old_goal)
    other = s.project(old_goal)
    s.status(project_id, "completed")
    s.status(other, "in_progress")
    s.link(project_id, new_goal)
    events = s.log.load("project", project_id)
    project, _ = fold_project(events)
    touched = [gid for e in events[-2:] for gid in goals_to_react(e, project)]
    assert touched == [old_goal, new_goal]
    s.achievement.react(touched)
    assert achieved(s, new_goal) and not achieved(s, old_goal)


def test_goals_to_react_per_event_kind() -> None:
    s = Scenario()
    goal_id = s.goal()
    project_id = s.project(goal_id)
    project, _ = s.handler.load_project(project_id)
    at = s.now()
    assert goals_to_react(ProjectStatusTransitioned(project_id, at, ProjectStatus.COMPLETED),
                          project) == (goal_id,)
    assert goals_to_react(ProjectGoalRemoved(project_id, at, goal_id), None) == (goal_id,)
    assert goals_to_react(ProjectGoalAdded(project_id, at, goal_id), project) == (goal_id,)
    assert goals_to_react(ProjectDescribed(project_id, at, "x"), project) == ()
    assert goals_to_react(GoalRefined(goal_id, at, "x"), None) == ()


class RacingLog(InMemoryEventLog):
    """A log where another writer changes the goal just before our first append."""

    raced: bool = False

    def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        meta: EventMeta,
        idempotency: tuple[str, str, CommandResult] | None = None,
    ) -> int:
        if aggregate_type == "goal" and not self.raced and meta.actor == ACHIEVEMENT_ACTOR:
            self.raced = True
            super().append(aggregate_type, aggregate_id, expected_version,
                           [GoalRefined(aggregate_id, meta.occurred_at, "edited elsewhere")],
                           EventMeta(meta.occurred_at, "other device"))
        return super().append(aggregate_type, aggregate_id, expected_version, events, meta,
                              idempotency)


def test_a_concurrent_write_is_retried_with_a_fresh_decision() -> None:
    s = Scenario(log=RacingLog())
    goal_id = s.goal()
    s.status(s.project(goal_id), "completed")
    [result] = s.achievement.react([goal_id])
    assert s.log.raced  # type: ignore[attr-defined]
    assert result.version == 3 and achieved(s, goal_id)
    assert achievement_key(goal_id, 2, True) in s.log.idempotency


class AlwaysRacingLog(InMemoryEventLog):
    """A log where another writer always gets in first."""

    def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        meta: EventMeta,
        idempotency: tuple[str, str, CommandResult] | None = None,
    ) -> int:
        if meta.actor == ACHIEVEMENT_ACTOR:
            edit = GoalRefined(aggregate_id, meta.occurred_at, f"edit {expected_version}")
            super().append(aggregate_type, aggregate_id, expected_version, [edit],
                           EventMeta(meta.occurred_at, "other device"))
        return super().append(aggregate_type, aggregate_id, expected_version, events, meta,
                              idempotency)


def test_persistent_concurrency_errors_surface_after_retries() -> None:
    s = Scenario(log=AlwaysRacingLog())
    goal_id = s.goal()
    s.status(s.project(goal_id), "completed")
    with pytest.raises(ConcurrencyError):
        s.achievement.react([goal_id])
    assert count_events(s, goal_id, "GoalRefined") == 3  # three attempts, then give up
    assert not achieved(s, goal_id)
