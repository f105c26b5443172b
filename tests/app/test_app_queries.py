"""Query parameters and the CLI.md JSON shapes of goal and project views."""

from __future__ import annotations

import dataclasses
import json

import pytest
from app_scenario import ACTOR, Scenario

from mo_local.app import commands as c
from mo_local.app.queries import (
    GetGoal,
    GetProject,
    GoalView,
    ListGoals,
    ListProjects,
    ProjectView,
    Search,
)
from mo_local.domain.errors import ValidationError
from mo_local.domain.goal import Goal
from mo_local.domain.values import Priority, Slice, TargetMonth, new_id

GOAL_KEYS = ["id", "summary", "slice", "priority", "target_month", "achieved", "archived",
             "created_at", "version", "project_ids"]
PROJECT_KEYS = ["id", "name", "status", "start_date", "target_date", "description", "goal_id",
                "milestones", "archived", "created_at", "version"]


def views() -> tuple[GoalView, ProjectView]:
    s = Scenario()
    goal_id = s.goal("learn Greek")
    project_id = s.project(goal_id, name="evening course")
    late = c.AddMilestone(aggregate_id=project_id, actor=ACTOR, at=s.now(), name="exam",
                          target_date="2025-06-01")
    early = c.AddMilestone(aggregate_id=project_id, actor=ACTOR, at=s.now(), name="A2",
                           target_date="2025-03-01")
    gone = c.AddMilestone(aggregate_id=project_id, actor=ACTOR, at=s.now(), name="gone",
                          target_date="2025-02-01")
    for command in (late, early, gone):
        s.run(command)
    s.run(c.ArchiveMilestone(aggregate_id=project_id, actor=ACTOR, at=s.now(),
                             milestone_id=gone.milestone_id))
    goal, goal_version = s.handler.load_goal(goal_id)
    project, project_version = s.handler.load_project(project_id)
    assert goal is not None and project is not None
    return GoalView.of(goal, goal_version, (project_id,)), ProjectView.of(project, project_version)


def test_goal_json_has_exactly_the_cli_shape() -> None:
    goal, project = views()
    data = goal.to_json()
    assert list(data) == GOAL_KEYS
    assert data["slice"] == "Learning" and data["priority"] == "must"
    assert data["target_month"] == "2025-09" and data["version"] == 1
    assert data["achieved"] is False and data["archived"] is False
    assert data["project_ids"] == [project.id]
    assert json.loads(json.dumps(data)) == data


def test_project_json_has_exactly_the_cli_shape() -> None:
    goal, project = views()
    data = project.to_json()
    assert list(data) == PROJECT_KEYS
    assert (data["status"], data["start_date"], data["target_date"]) == (
        "planned", "2025-01-01", "2025-06-30"
    )
    assert data["goal_id"] == goal.id and data["version"] == 6
    milestones = data["milestones"]
    assert isinstance(milestones, list)
    # Archived milestones are left out; the rest come in date order.
    assert [m["name"] for m in milestones] == ["A2", "exam"]
    assert all(list(m) == ["id", "name", "target_date"] for m in milestones)
    assert json.loads(json.dumps(data)) == data


def test_views_hide_domain_text_in_repr() -> None:
    """INV-015: views can be logged without leaking summaries or names."""
    goal, project = views()
    assert "Greek" not in repr(goal)
    assert "evening" not in repr(project) and "exam" not in repr(project)


def test_list_goals_canonicalises_and_filters() -> None:
    query = ListGoals(slice="learning", priority="MUST", month="2025-09")
    assert (query.slice, query.priority, query.month) == ("Learning", "must", "2025-09")
    goal, _ = views()
    assert query.matches(goal)
    assert not ListGoals(slice="work").matches(goal)
    assert not ListGoals(month="2025-10").matches(goal)
    archived = GoalView(**{**goal.__dict__, "archived": True})
    assert not ListGoals().matches(archived)
    assert ListGoals(include_archived=True).matches(archived)
    with pytest.raises(ValidationError) as info:
        ListGoals(month="2025-13")
    assert set(info.value.fields) == {"month"}


def test_list_projects_filters() -> None:
    goal, project = views()
    assert ListProjects(goal_id=goal.id.upper()).matches(project)
    assert not ListProjects(unlinked=True).matches(project)
    assert ListProjects(status="Planned").matches(project)
    assert not ListProjects(status="completed").matches(project)
    unlinked = ProjectView(**{**project.__dict__, "goal_id": None})
    assert ListProjects(unlinked=True).matches(unlinked)
    with pytest.raises(ValidationError):
        ListProjects(goal_id=goal.id, unlinked=True)
    with pytest.raises(ValidationError):
        ListProjects(status="done")


def test_search_and_get_parameters() -> None:
    search = Search("  greek  ")
    assert search.text == "greek" and search.goals and search.projects
    assert "greek" not in repr(search)
    with pytest.raises(ValidationError):
        Search("   ")
    with pytest.raises(ValidationError):
        Search("x", goals=False, projects=False)
    goal_id = new_id()
    assert GetGoal(goal_id.upper()).id == goal_id
    with pytest.raises(ValidationError):
        GetProject("nope")


@pytest.mark.parametrize("achieved_at", [None, "2025-02-03T04:05:06.000000Z"])
@pytest.mark.parametrize("archived_at", [None, "2025-03-04T05:06:07.000000Z"])
@pytest.mark.parametrize("month", [TargetMonth(2000, 1), TargetMonth(2031, 12)])
def test_goal_views_built_in_one_go_equal_the_constructed_ones(
    achieved_at: str | None, archived_at: str | None, month: TargetMonth
) -> None:
    goal = Goal(new_id(), "  padded summary ", Slice.FAMILY, Priority.MAYBE, month,
                "2025-01-02T03:04:05.000000Z", achieved_at, archived_at)
    for project_ids in ((), ("p1", "p2")):
        built = GoalView.of(goal, 7, project_ids)
        constructed = GoalView(
            id=goal.id, summary=goal.summary, slice=goal.slice.value,
            priority=goal.priority.value, target_month=str(month),
            achieved=achieved_at is not None, archived=archived_at is not None,
            created_at=goal.created_at, version=7, project_ids=project_ids,
        )
        assert built == constructed
        assert hash(built) == hash(constructed)
        assert built.to_json() == constructed.to_json()
        assert type(built.project_ids) is tuple
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.summary = "changed"  # type: ignore[misc]
