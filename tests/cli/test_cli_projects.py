"""Project rules of DESIGN.md §3 through the real `mo` command (subprocess, --json).

One store serves the whole module; every test makes its own projects and goals.
"""

from __future__ import annotations

import uuid

import pytest
from cli_runner import Mo
from cli_support import (
    PROJECT_KEYS,
    add_goal,
    add_project,
    as_dict,
    as_list,
    log_grows,
    new_store,
    refused,
    show_goal,
    show_project,
)

DATE_RULE = "must be a real date YYYY-MM-DD with a year in 2000–2999"
ORDER_RULE = "start date must be on or before the target date"


@pytest.fixture(scope="module")
def mo(tmp_path_factory: pytest.TempPathFactory) -> Mo:
    """One initialised store for the module."""
    return new_store(tmp_path_factory, "projects")


# -- creation ---------------------------------------------------------------------------


def test_project_add_and_show_have_the_project_object_shape(mo: Mo) -> None:
    created = as_dict(mo.ok("project", "add", "  Kitchen garden ", "--start", "2031-03-01",
                            "--target", "2031-09-30", "--description", " Beans, peas "))
    assert set(created) == {"id", "version"} and created["version"] == 1
    assert uuid.UUID(str(created["id"])).version == 4
    project = show_project(mo, str(created["id"]))
    assert set(project) == PROJECT_KEYS
    assert project == project | {
        "id": created["id"], "name": "Kitchen garden", "status": "planned",
        "start_date": "2031-03-01", "target_date": "2031-09-30",
        # The description is kept as given (not trimmed).
        "description": " Beans, peas ", "goal_id": None, "milestones": [],
        "archived": False, "version": 1,
    }
    assert str(project["created_at"]).endswith("Z")


def test_project_add_with_goal_links_it_in_one_command(mo: Mo) -> None:
    goal_id = add_goal(mo, "Eat more greens")
    created = as_dict(mo.ok("project", "add", "Herb box", "--start", "2031-04-01",
                            "--target", "2031-04-30", "--goal", goal_id))
    assert created["version"] == 2  # created + linked
    assert show_goal(mo, goal_id)["project_ids"] == [created["id"]]


def test_project_value_bounds_are_accepted(mo: Mo) -> None:
    name, text = "n" * 200, "d" * 2000
    project = show_project(mo, add_project(mo, f" {name} ", "2032-02-29", "2032-02-29",
                                           "--description", text))
    assert (project["name"], project["description"]) == (name, text)
    assert project["start_date"] == project["target_date"] == "2032-02-29"


def test_project_add_rejects_bad_values_with_field_and_rule_and_writes_nothing(mo: Mo) -> None:
    def add(name: str = "Valid", start: str = "2031-01-01", target: str = "2031-02-01",
            *extra: str) -> list[str]:
        return ["project", "add", name, "--start", start, "--target", target, *extra]

    with log_grows(mo, by=0):
        refused(mo, *add(name="n" * 201), fields={"name": "1–200"})
        refused(mo, *add("Valid", "2031-01-01", "2031-02-01", "--description", "d" * 2001),
                fields={"description": "0–2000"})
        refused(mo, *add(start="2031-02-29"), fields={"start_date": DATE_RULE})
        refused(mo, *add(start="2031-02-02"), fields={"start_date": ORDER_RULE})
        # Every broken field at once: a blank name, years outside 2000–2999.
        refused(mo, *add(name="  \t", start="1999-12-31", target="3000-01-01"),
                fields={"name": "name must be 1–200 characters after trimming",
                        "start_date": DATE_RULE, "target_date": DATE_RULE})


def test_unknown_goal_is_4_and_archived_goal_is_3_for_add_and_link(mo: Mo) -> None:
    archived = add_goal(mo, "Abandoned plan")
    mo.ok("goal", "archive", archived)
    project_id = add_project(mo, "Build a hive")
    unknown = str(uuid.uuid4())
    add = ["project", "add", "Orphan", "--start", "2031-01-01", "--target", "2031-02-01"]
    with log_grows(mo, by=0):
        for command in ([*add, "--goal", unknown], ["project", "link", project_id, unknown]):
            error = refused(mo, *command, code=4)
            assert error["code"] == "not_found" and unknown in str(error["message"])
        for command in ([*add, "--goal", archived], ["project", "link", project_id, archived]):
            refused(mo, *command, fields={"goal_id": "goal is archived"})
        refused(mo, "project", "link", project_id, "not-a-goal-id", fields={"goal_id": "UUID"})


# -- edits and status -----------------------------------------------------------------------


def test_project_edit_renames_describes_and_reschedules(mo: Mo) -> None:
    project_id = add_project(mo, "Paint the fence", "2031-05-01", "2031-05-31")
    edited = as_dict(mo.ok("project", "edit", project_id, "--name", " Paint the shed ",
                           "--description", "Two coats", "--start", "2031-06-01",
                           "--target", "2031-06-30"))
    assert set(edited) == PROJECT_KEYS
    assert edited == edited | {
        "name": "Paint the shed", "description": "Two coats", "start_date": "2031-06-01",
        "target_date": "2031-06-30", "version": 4,
    }
    cleared = as_dict(mo.ok("project", "edit", project_id, "--description", ""))
    assert (cleared["description"], cleared["version"]) == ("", 5)
    assert show_project(mo, project_id) == cleared


def test_project_edit_refuses_unchanged_values_and_reversed_dates(mo: Mo) -> None:
    project_id = add_project(mo, "Fix the roof", "2031-07-01", "2031-07-31",
                             "--description", "Tiles")
    with log_grows(mo, by=0):
        refused(mo, "project", "edit", project_id, "--name", "  Fix the roof",
                "--description", "Tiles",
                fields={"name": "unchanged", "description": "unchanged"})
        refused(mo, "project", "edit", project_id, "--start", "2031-07-01", "--target",
                "2031-07-31", fields={"start_date": "unchanged", "target_date": "unchanged"})
        refused(mo, "project", "edit", project_id, "--start", "2031-08-01", "--target",
                "2031-07-31", fields={"start_date": ORDER_RULE})
        # --start and --target go together; nothing to change is a usage error.
        refused(mo, "project", "edit", project_id, "--start", "2031-07-02", code=2)
        refused(mo, "project", "edit", project_id, code=2)


def test_any_status_may_follow_any_other_but_not_itself(mo: Mo) -> None:
    project_id = add_project(mo, "Learn the cello")
    with log_grows(mo, by=3):
        for version, status in enumerate(("completed", "canceled", "planned"), start=2):
            project = as_dict(mo.ok("project", "status", project_id, status,
                                    "--expect-version", str(version - 1)))
            assert (project["status"], project["version"]) == (status, version)
        stale = refused(mo, "project", "status", project_id, "in_progress",
                        "--expect-version", "3", code=5)
        assert stale["code"] == "stale_version"
        refused(mo, "project", "edit", project_id, "--name", "Learn the viola",
                "--expect-version", "1", code=5)
        refused(mo, "project", "status", project_id, "planned", fields={"status": "unchanged"})
        refused(mo, "project", "status", project_id, "done",
                fields={"status": "one of planned, in_progress, completed, canceled"})


# -- goal links -----------------------------------------------------------------------------


def test_link_move_and_unlink_keep_both_goals_project_ids_in_step(mo: Mo) -> None:
    first, second = add_goal(mo, "Get fit"), add_goal(mo, "Run a race")
    project_id = add_project(mo, "Couch to 5k")
    # link 1 + move 2 (unlink + link) + unlink 1; the refused commands write nothing.
    with log_grows(mo, by=4):
        linked = as_dict(mo.ok("project", "link", project_id, first))
        assert (linked["goal_id"], linked["version"]) == (first, 2)
        refused(mo, "project", "link", project_id, first, fields={"goal_id": "unchanged"})
        moved = as_dict(mo.ok("project", "link", project_id, second))
        assert (moved["goal_id"], moved["version"]) == (second, 4)
        assert show_goal(mo, first)["project_ids"] == []
        assert show_goal(mo, second)["project_ids"] == [project_id]
        unlinked = as_dict(mo.ok("project", "unlink", project_id))
        assert (unlinked["goal_id"], unlinked["version"]) == (None, 5)
        assert show_goal(mo, second)["project_ids"] == []
        refused(mo, "project", "unlink", project_id,
                fields={"goal_id": "project is not linked to a goal"})


# -- archive, unknown ids, versions ---------------------------------------------------------


def test_archived_project_refuses_changes_and_archiving_again_is_a_no_op(mo: Mo) -> None:
    goal_id = add_goal(mo, "Tidy the house")
    project_id = add_project(mo, "Clear the attic")
    with log_grows(mo, by=1):
        archived = as_dict(mo.ok("project", "archive", project_id))
        assert (archived["archived"], archived["version"]) == (True, 2)
        assert as_dict(mo.ok("project", "archive", project_id)) == archived
        for change in (["edit", project_id, "--name", "Clear the cellar"],
                       ["status", project_id, "completed"],
                       ["link", project_id, goal_id]):
            refused(mo, "project", *change, fields={"project": "project is archived"})


def test_unknown_project_ids_are_exit_4(mo: Mo) -> None:
    unknown, goal_id = str(uuid.uuid4()), add_goal(mo, "Goal for unknown projects")
    with log_grows(mo, by=0):
        for command in (["project", "show", unknown],
                        ["project", "status", unknown, "completed"],
                        ["project", "link", unknown, goal_id],
                        ["project", "archive", unknown]):
            error = refused(mo, *command, code=4)
            assert error["code"] == "not_found" and unknown in str(error["message"])


# -- lists ----------------------------------------------------------------------------------


def test_project_list_filters(mo: Mo) -> None:
    goal_id = add_goal(mo, "Travel more")
    trip = add_project(mo, "Trip to Lisbon", "2035-01-01", "2035-03-01", "--goal", goal_id)
    train = add_project(mo, "Train to Vienna", "2035-01-01", "2035-02-01", "--goal", goal_id)
    loose = add_project(mo, "Renew passport", "2035-01-01", "2035-01-20")
    old = add_project(mo, "Old trip", "2035-01-01", "2035-01-10", "--goal", goal_id)
    mo.ok("project", "status", train, "in_progress")
    mo.ok("project", "archive", old)

    def ids(*filters: str) -> list[str]:
        listed = as_list(mo.ok("project", "list", *filters))
        assert all(set(p) == PROJECT_KEYS for p in listed)
        return [str(p["id"]) for p in listed]

    # Ordered by target date.
    assert ids("--goal", goal_id) == [train, trip]
    assert ids("--goal", goal_id, "--all") == [old, train, trip]
    assert ids("--goal", goal_id, "--status", "in_progress") == [train]
    unlinked = as_list(mo.ok("project", "list", "--unlinked"))
    assert loose in [p["id"] for p in unlinked]
    assert all(p["goal_id"] is None and not p["archived"] for p in unlinked)
    planned = as_list(mo.ok("project", "list", "--status", "planned"))
    assert {trip, loose} <= {str(p["id"]) for p in planned}
    assert all(p["status"] == "planned" for p in planned)
    refused(mo, "project", "list", "--goal", goal_id, "--unlinked", code=2)
    refused(mo, "project", "list", "--status", "finished", fields={"status": "one of"})
