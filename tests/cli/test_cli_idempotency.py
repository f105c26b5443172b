"""Issue 3 acceptance 2 through the real `mo`: `--idempotency-key` makes retries safe.

The same key with the same command writes once and answers with the first
result; the same key with another command is a conflict (exit 5).
"""

from __future__ import annotations

import pytest
from cli_runner import Mo
from cli_support import (
    add_goal,
    add_project,
    as_dict,
    as_list,
    log_grows,
    new_store,
    refused,
    show_project,
)


@pytest.fixture(scope="module")
def mo(tmp_path_factory: pytest.TempPathFactory) -> Mo:
    """One initialised store for the module."""
    return new_store(tmp_path_factory, "idempotency")


GOAL_ADD = ("goal", "add", "Swim 2 km", "--slice", "health", "--priority", "must",
            "--month", "2032-06")


def test_goal_add_twice_with_one_key_creates_one_goal_and_returns_the_first_result(
    mo: Mo,
) -> None:
    with log_grows(mo, by=2):  # the goal's key record and its GoalCreated event
        first = as_dict(mo.ok(*GOAL_ADD, "--idempotency-key", "add-swim"))
        again = as_dict(mo.ok(*GOAL_ADD, "--idempotency-key", "add-swim"))
    assert again == first
    listed = as_list(mo.ok("goal", "list", "--month", "2032-06"))
    assert [g["id"] for g in listed] == [first["id"]]


def test_same_key_with_another_command_is_a_conflict_and_writes_nothing(mo: Mo) -> None:
    mo.ok("goal", "add", "Cycle to work", "--slice", "health", "--priority", "should",
          "--month", "2032-07", "--idempotency-key", "add-cycle")
    goal_id = add_goal(mo, "Walk daily")
    with log_grows(mo, by=0):
        other_text = refused(mo, "goal", "add", "Cycle to the office", "--slice", "health",
                             "--priority", "should", "--month", "2032-07",
                             "--idempotency-key", "add-cycle", code=5)
        assert other_text["code"] == "conflict"
        assert "idempotency key" in str(other_text["message"])
        other_kind = refused(mo, "goal", "achieve", goal_id, "--idempotency-key", "add-cycle",
                             code=5)
        assert other_kind["code"] == "conflict"


def test_edit_retried_after_a_later_change_does_not_apply_again(mo: Mo) -> None:
    goal_id = add_goal(mo, "Sleep eight hours")
    with log_grows(mo, by=2):
        first = as_dict(mo.ok("goal", "edit", goal_id, "--summary", "Sleep seven hours",
                              "--idempotency-key", "edit-sleep"))
        assert first["version"] == 2
        repeated = as_dict(mo.ok("goal", "edit", goal_id, "--summary", "Sleep seven hours",
                                 "--idempotency-key", "edit-sleep"))
        assert repeated == first
        mo.ok("goal", "edit", goal_id, "--summary", "Sleep nine hours")
        late = as_dict(mo.ok("goal", "edit", goal_id, "--summary", "Sleep seven hours",
                             "--idempotency-key", "edit-sleep"))
    # The retry is answered from the record, not re-applied over the later change.
    assert (late["summary"], late["version"]) == ("Sleep nine hours", 3)


def test_project_and_milestone_add_retries_reuse_the_first_ids(mo: Mo) -> None:
    args = ("project", "add", "Tile the floor", "--start", "2032-01-01", "--target",
            "2032-02-01", "--idempotency-key", "add-tiles")
    # The project's key record and ProjectCreated, then one ProjectMilestoneAdded.
    with log_grows(mo, by=3):
        first = as_dict(mo.ok(*args))
        assert as_dict(mo.ok(*args)) == first
        project_id = str(first["id"])
        milestone = ("milestone", "add", project_id, "Tiles bought", "--date", "2032-01-10",
                     "--idempotency-key", "ms-tiles")
        made = as_dict(mo.ok(*milestone))
        assert as_dict(mo.ok(*milestone)) == made
    project = show_project(mo, project_id)
    assert [m["id"] for m in project["milestones"]] == [made["id"]]
    assert project["version"] == 2


def test_a_rejected_command_does_not_use_up_its_key(mo: Mo) -> None:
    project_id = add_project(mo, "Fix the bike", "2032-03-01", "2032-03-31")
    with log_grows(mo, by=0):
        refused(mo, "project", "status", project_id, "planned", "--idempotency-key", "bike-1",
                fields={"status": "unchanged"})
        refused(mo, "goal", "add", "Bad", "--slice", "health", "--priority", "must",
                "--month", "2032-01", "--idempotency-key", "k" * 201,
                fields={"idempotency_key": "1–200"})
    done = as_dict(mo.ok("project", "status", project_id, "completed",
                         "--idempotency-key", "bike-1"))
    assert (done["status"], done["version"]) == ("completed", 2)
