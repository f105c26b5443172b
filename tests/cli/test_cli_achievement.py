"""Issue 3 acceptance 3 through the real `mo`: goal achievement follows linked projects."""

from __future__ import annotations

import pytest
from cli_runner import Mo
from cli_support import add_goal, add_project, as_dict, new_store, show_goal


@pytest.fixture(scope="module")
def mo(tmp_path_factory: pytest.TempPathFactory) -> Mo:
    """One initialised store for the module."""
    return new_store(tmp_path_factory, "achievement")


def status(mo: Mo, project_id: str, value: str) -> None:
    """Move a project to a status."""
    assert as_dict(mo.ok("project", "status", project_id, value))["status"] == value


def test_goal_follows_its_linked_projects(mo: Mo) -> None:
    goal_id = add_goal(mo, "Finish the house")
    first = add_project(mo, "Roof", "2031-01-01", "2031-06-30", "--goal", goal_id)
    second = add_project(mo, "Windows", "2031-01-01", "2031-06-30", "--goal", goal_id)
    status(mo, first, "completed")
    assert show_goal(mo, goal_id)["achieved"] is False
    status(mo, second, "completed")
    achieved = show_goal(mo, goal_id)
    # Two completions, exactly one GoalAchieved.
    assert (achieved["achieved"], achieved["version"]) == (True, 2)
    assert sorted(achieved["project_ids"]) == sorted([first, second])

    third = add_project(mo, "Garden", "2031-01-01", "2031-06-30", "--goal", goal_id)
    assert show_goal(mo, goal_id)["achieved"] is False
    # An archived project does not count.
    mo.ok("project", "archive", third)
    again = show_goal(mo, goal_id)
    assert (again["achieved"], again["version"]) == (True, 4)

    status(mo, second, "in_progress")
    assert show_goal(mo, goal_id)["achieved"] is False


def test_moving_the_last_open_project_away_achieves_the_goal_it_left(mo: Mo) -> None:
    left, joined = add_goal(mo, "Get a degree"), add_goal(mo, "Change careers")
    done = add_project(mo, "Thesis", "2031-01-01", "2031-06-30", "--goal", left)
    status(mo, done, "completed")
    assert show_goal(mo, left)["achieved"] is True
    open_ = add_project(mo, "Internship", "2031-01-01", "2031-06-30", "--goal", left)
    assert show_goal(mo, left)["achieved"] is False
    mo.ok("project", "link", open_, joined)
    assert show_goal(mo, left)["achieved"] is True
    assert show_goal(mo, joined)["achieved"] is False
    status(mo, open_, "completed")
    assert show_goal(mo, joined)["achieved"] is True
    # Unlinking leaves the goal without projects: its state is left alone.
    mo.ok("project", "unlink", open_)
    assert show_goal(mo, joined)["achieved"] is True


def test_a_goal_without_projects_is_left_to_the_user(mo: Mo) -> None:
    goal_id = add_goal(mo, "Be kind")
    assert as_dict(mo.ok("goal", "achieve", goal_id))["achieved"] is True
    project_id = add_project(mo, "Volunteer", "2031-01-01", "2031-06-30", "--goal", goal_id)
    assert show_goal(mo, goal_id)["achieved"] is False
    status(mo, project_id, "canceled")
    assert show_goal(mo, goal_id)["achieved"] is False
