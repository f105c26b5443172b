"""Milestone rules of DESIGN.md §3 through the real `mo` command (subprocess, --json).

One store serves the whole module; every test makes its own project.
"""

from __future__ import annotations

import uuid

import pytest
from cli_runner import Mo
from cli_support import (
    MILESTONE_KEYS,
    PROJECT_KEYS,
    add_project,
    as_dict,
    log_grows,
    new_store,
    refused,
    show_project,
)

INSIDE_RULE = "milestone date must be within the project's start and target dates"
KEEP_RULE = "every milestone must stay within the project's start and target dates"


@pytest.fixture(scope="module")
def mo(tmp_path_factory: pytest.TempPathFactory) -> Mo:
    """One initialised store for the module."""
    return new_store(tmp_path_factory, "milestones")


def add_milestone(mo: Mo, project_id: str, name: str, day: str, *extra: str) -> str:
    """Add a milestone; returns its id."""
    created = as_dict(mo.ok("milestone", "add", project_id, name, "--date", day, *extra))
    assert set(created) == {"id", "project_id"} and created["project_id"] == project_id
    return str(created["id"])


def test_milestones_may_sit_on_both_project_dates_and_list_by_date(mo: Mo) -> None:
    project_id = add_project(mo, "Write a novel", "2031-01-01", "2031-12-31")
    stale = refused(mo, "milestone", "add", project_id, "Outline", "--date", "2031-01-01",
                    "--expect-version", "0", code=5)
    assert stale["code"] == "stale_version"
    last = add_milestone(mo, project_id, "  Final draft ", "2031-12-31")
    first = add_milestone(mo, project_id, "Outline", "2031-01-01", "--expect-version", "2")
    assert uuid.UUID(last).version == 4
    project = show_project(mo, project_id)
    # Only the two accepted adds changed the project.
    assert set(project) == PROJECT_KEYS and project["version"] == 3
    assert all(set(m) == MILESTONE_KEYS for m in project["milestones"])
    assert project["milestones"] == [
        {"id": first, "name": "Outline", "target_date": "2031-01-01"},
        {"id": last, "name": "Final draft", "target_date": "2031-12-31"},
    ]


def test_milestone_add_rejects_bad_names_and_dates_outside_the_project(mo: Mo) -> None:
    project_id = add_project(mo, "Learn Italian", "2031-03-01", "2031-06-30")

    def add(name: str, day: str) -> list[str]:
        return ["milestone", "add", project_id, name, "--date", day]

    with log_grows(mo, by=0):
        refused(mo, *add("Lesson 1", "2031-02-28"), fields={"target_date": INSIDE_RULE})
        refused(mo, *add("Lesson 1", "2031-07-01"), fields={"target_date": INSIDE_RULE})
        refused(mo, *add("  ", "2031-04-31"), fields={"name": "name must be 1–200",
                                                      "target_date": "real date"})
        refused(mo, *add("m" * 201, "2031-04-01"), fields={"name": "1–200"})


def test_milestone_rename_and_move_and_unknown_milestones(mo: Mo) -> None:
    project_id = add_project(mo, "Move house", "2031-05-01", "2031-08-31")
    milestone_id = add_milestone(mo, project_id, "Pack", "2031-06-01")
    unknown = str(uuid.uuid4())
    with log_grows(mo, by=2):
        renamed = as_dict(mo.ok("milestone", "rename", project_id, milestone_id, " Boxes "))
        assert set(renamed) == PROJECT_KEYS and renamed["version"] == 3
        assert renamed["milestones"][0]["name"] == "Boxes"
        moved = as_dict(mo.ok("milestone", "move", project_id, milestone_id, "--date",
                              "2031-08-31"))
        assert (moved["milestones"][0]["target_date"], moved["version"]) == ("2031-08-31", 4)
        refused(mo, "milestone", "rename", project_id, milestone_id, "Boxes",
                fields={"name": "unchanged"})
        refused(mo, "milestone", "move", project_id, milestone_id, "--date", "2031-08-31",
                fields={"target_date": "unchanged"})
        refused(mo, "milestone", "move", project_id, milestone_id, "--date", "2031-09-01",
                fields={"target_date": INSIDE_RULE})
        refused(mo, "milestone", "rename", project_id, milestone_id, "Crates",
                "--expect-version", "3", code=5)
        for change in (["move", project_id, unknown, "--date", "2031-06-02"],
                       ["archive", project_id, unknown]):
            error = refused(mo, "milestone", *change, code=4)
            assert error["code"] == "not_found" and unknown in str(error["message"])
        refused(mo, "milestone", "archive", project_id, "pack", fields={"milestone_id": "UUID"})
        error = refused(mo, "milestone", "rename", str(uuid.uuid4()), milestone_id, "X", code=4)
        assert "project not found" in str(error["message"])


def test_project_dates_must_keep_every_active_milestone_inside(mo: Mo) -> None:
    project_id = add_project(mo, "Renovate the bathroom", "2031-02-01", "2031-04-30")
    early = add_milestone(mo, project_id, "Tiles chosen", "2031-02-10")
    add_milestone(mo, project_id, "Plumbing done", "2031-04-20")
    with log_grows(mo, by=0):
        refused(mo, "project", "edit", project_id, "--start", "2031-02-11", "--target",
                "2031-04-30", fields={"start_date": KEEP_RULE})
        refused(mo, "project", "edit", project_id, "--start", "2031-02-01", "--target",
                "2031-04-19", fields={"target_date": KEEP_RULE})
    # Edges stay inclusive: moving the dates onto the milestones is allowed.
    snug = as_dict(mo.ok("project", "edit", project_id, "--start", "2031-02-10", "--target",
                         "2031-04-20"))
    assert (snug["start_date"], snug["target_date"]) == ("2031-02-10", "2031-04-20")
    # An archived milestone no longer holds the dates back.
    mo.ok("milestone", "archive", project_id, early)
    later = as_dict(mo.ok("project", "edit", project_id, "--start", "2031-03-01", "--target",
                          "2031-04-20"))
    assert later["start_date"] == "2031-03-01"
    assert [m["name"] for m in later["milestones"]] == ["Plumbing done"]


def test_archived_milestones_and_archived_projects_refuse_milestone_changes(mo: Mo) -> None:
    project_id = add_project(mo, "Plan a wedding", "2031-01-01", "2031-09-30")
    kept = add_milestone(mo, project_id, "Venue", "2031-02-01")
    gone = add_milestone(mo, project_id, "Band", "2031-03-01")
    with log_grows(mo, by=2):
        archived = as_dict(mo.ok("milestone", "archive", project_id, gone))
        assert [m["id"] for m in archived["milestones"]] == [kept]
        assert archived["version"] == 4
        for change in (["rename", project_id, gone, "DJ"],
                       ["move", project_id, gone, "--date", "2031-04-01"],
                       ["archive", project_id, gone]):
            refused(mo, "milestone", *change, fields={"milestone_id": "milestone is archived"})
        mo.ok("project", "archive", project_id)
        for change in (["add", project_id, "Cake", "--date", "2031-05-01"],
                       ["rename", project_id, kept, "Garden venue"],
                       ["move", project_id, kept, "--date", "2031-03-01"]):
            refused(mo, "milestone", *change, fields={"project": "project is archived"})
