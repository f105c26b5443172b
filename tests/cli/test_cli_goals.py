"""Goal rules of DESIGN.md §3 through the real `mo` command (subprocess, --json).

One store serves the whole module (a subprocess costs ~0.3 s); every test makes
its own goals, so what one test asserts never depends on another.
"""

from __future__ import annotations

import uuid

import pytest
from cli_runner import Mo
from cli_support import (
    GOAL_KEYS,
    add_goal,
    as_dict,
    as_list,
    log_grows,
    new_store,
    refused,
)
from cli_support import show_goal as show

MONTH_RULE = "must be a real month YYYY-MM with a year in 2000–2999"


@pytest.fixture(scope="module")
def mo(tmp_path_factory: pytest.TempPathFactory) -> Mo:
    """One initialised store for the module."""
    return new_store(tmp_path_factory, "goals")


# -- values ---------------------------------------------------------------------------


def test_goal_add_returns_id_and_version_and_show_has_the_goal_object_shape(mo: Mo) -> None:
    # Also the lower summary bound after trimming, the upper month bound and letter case.
    created = as_dict(mo.ok("goal", "add", "   Z  ", "--slice", "HEALTH",
                            "--priority", "Should", "--month", "2999-12"))
    assert set(created) == {"id", "version"}
    assert created["version"] == 1
    assert uuid.UUID(str(created["id"])).version == 4
    goal = show(mo, str(created["id"]))
    assert set(goal) == GOAL_KEYS
    assert goal == goal | {
        "id": created["id"], "summary": "Z", "slice": "Health", "priority": "should",
        "target_month": "2999-12", "achieved": False, "archived": False, "version": 1,
        "project_ids": [],
    }
    assert str(goal["created_at"]).endswith("Z")


def test_goal_value_upper_and_lower_bounds_are_accepted(mo: Mo) -> None:
    longest = "y" * 500
    goal = show(mo, add_goal(mo, f"  {longest}\t ", "relationships", "MAYBE", "2000-01"))
    assert (goal["summary"], goal["slice"], goal["priority"], goal["target_month"]) == (
        longest, "Relationships", "maybe", "2000-01")


def test_goal_add_rejects_bad_values_naming_field_and_rule_inv015(mo: Mo) -> None:
    """Exit 3, every field with its rule, nothing written, no domain text echoed (INV-015)."""
    def add(summary: str = "Valid summary", slice: str = "work", priority: str = "must",
            month: str = "2031-05") -> list[str]:
        return ["goal", "add", summary, "--slice", slice, "--priority", priority,
                "--month", month]

    with log_grows(mo, by=0):
        for month in ("2031-13", "1999-12", "3000-01"):
            refused(mo, *add(month=month), fields={"target_month": MONTH_RULE})
        # INV-015: the rejected text itself is never echoed back.
        error = refused(mo, *add(summary="canary-5u44 " * 42), fields={"summary": "1–500"})
        assert "canary" not in str(error)
        # Every broken field is reported at once; a blank summary is empty once trimmed.
        refused(mo, *add(summary="  \t ", slice="Sports", priority="urgent", month="2031-00"),
                fields={"summary": "summary must be 1–500 characters after trimming",
                        "slice": "one of Health, Family", "priority": "one of must, should",
                        "target_month": MONTH_RULE})
        # For people: one line on stderr naming the field and the rule.
        plain = mo(*add(month="2031-1"))
        assert (plain.code, plain.stdout) == (3, "")
        first = plain.stderr.splitlines()[0]
        assert first.startswith("error: ") and f"target_month: {MONTH_RULE}" in first


# -- edits ----------------------------------------------------------------------------


def test_goal_edit_changes_fields_with_one_event_each(mo: Mo) -> None:
    goal_id = add_goal(mo, "Read twelve books", "learning", "maybe", "2031-12")
    edited = as_dict(mo.ok("goal", "edit", goal_id, "--summary", "  Read ten books "))
    assert (edited["summary"], edited["version"]) == ("Read ten books", 2)
    edited = as_dict(mo.ok("goal", "edit", goal_id, "--slice", "leisure", "--priority", "must",
                           "--month", "2032-01"))
    assert edited["version"] == 5
    assert (edited["slice"], edited["priority"], edited["target_month"]) == (
        "Leisure", "must", "2032-01")
    assert show(mo, goal_id) == edited


def test_goal_edit_refuses_unchanged_and_invalid_values(mo: Mo) -> None:
    goal_id = add_goal(mo, "Meditate daily", "mindfulness", "should", "2031-03")
    with log_grows(mo, by=1):
        # Trimming happens before the comparison.
        refused(mo, "goal", "edit", goal_id, "--summary", " Meditate daily ",
                fields={"summary": "unchanged"})
        refused(mo, "goal", "edit", goal_id, "--month", "2031-03", "--slice", "mindfulness",
                "--priority", "should", fields={"target_month": "unchanged",
                                                "slice": "unchanged", "priority": "unchanged"})
        refused(mo, "goal", "edit", goal_id, "--month", "2031-13",
                fields={"target_month": MONTH_RULE})
        refused(mo, "goal", "edit", goal_id, code=2)
        # A field given with its current value is ignored when another one changes.
        edited = as_dict(mo.ok("goal", "edit", goal_id, "--slice", "mindfulness",
                               "--priority", "must"))
        assert (edited["priority"], edited["version"]) == ("must", 2)


# -- achieve, unachieve, archive -------------------------------------------------------


def test_achieve_needs_not_achieved_and_unachieve_needs_achieved(mo: Mo) -> None:
    goal_id = add_goal(mo, "Climb a mountain", "health", "maybe", "2031-09")
    with log_grows(mo, by=2):
        refused(mo, "goal", "unachieve", goal_id, fields={"goal": "goal is not achieved"})
        achieved = as_dict(mo.ok("goal", "achieve", goal_id))
        assert set(achieved) == GOAL_KEYS
        assert (achieved["achieved"], achieved["version"]) == (True, 2)
        refused(mo, "goal", "achieve", goal_id, fields={"goal": "goal is already achieved"})
        again = as_dict(mo.ok("goal", "unachieve", goal_id))
        assert (again["achieved"], again["version"]) == (False, 3)


def test_archived_goal_refuses_changes_and_archiving_again_is_a_no_op(mo: Mo) -> None:
    goal_id = add_goal(mo, "Plant a tree", "family", "should", "2031-04")
    with log_grows(mo, by=1):
        archived = as_dict(mo.ok("goal", "archive", goal_id))
        assert (archived["archived"], archived["version"]) == (True, 2)
        assert as_dict(mo.ok("goal", "archive", goal_id)) == archived
        for change in (["edit", goal_id, "--summary", "Plant two trees"],
                       ["achieve", goal_id]):
            refused(mo, "goal", *change, fields={"goal": "goal is archived"})


def test_unknown_goal_ids_are_exit_4(mo: Mo) -> None:
    unknown = str(uuid.uuid4())
    with log_grows(mo, by=0):
        for command in (["show", unknown], ["edit", unknown, "--summary", "Anything"],
                        ["archive", unknown]):
            error = refused(mo, "goal", *command, code=4)
            assert error["code"] == "not_found" and unknown in str(error["message"])


# -- optimistic concurrency -------------------------------------------------------------


def test_expect_version_stale_is_exit_5_and_current_is_accepted(mo: Mo) -> None:
    goal_id = add_goal(mo, "Write a journal", "mindfulness", "maybe", "2031-10")
    with log_grows(mo, by=2):
        edited = as_dict(mo.ok("goal", "edit", goal_id, "--summary", "Write a diary",
                               "--expect-version", "1"))
        assert edited["version"] == 2
        stale = refused(mo, "goal", "edit", goal_id, "--summary", "Keep a diary",
                        "--expect-version", "1", code=5)
        assert stale["code"] == "stale_version"
        done = as_dict(mo.ok("goal", "achieve", goal_id, "--expect-version", "2"))
        assert (done["summary"], done["achieved"], done["version"]) == (
            "Write a diary", True, 3)


# -- lists ------------------------------------------------------------------------------


def test_goal_list_filters_and_hides_archived_unless_all(mo: Mo) -> None:
    money_maybe = add_goal(mo, "Buy a sailboat", "money", "maybe", "2033-02")
    money_must = add_goal(mo, "Pay off the loan", "money", "must", "2033-02")
    work_should = add_goal(mo, "Ship the product", "work", "should", "2033-02")
    gone = add_goal(mo, "Old money plan", "money", "must", "2033-02")
    mo.ok("goal", "archive", gone)

    def ids(*filters: str) -> list[str]:
        listed = as_list(mo.ok("goal", "list", *filters))
        assert all(set(g) == GOAL_KEYS for g in listed)
        return [str(g["id"]) for g in listed]

    everything = as_list(mo.ok("goal", "list"))
    assert not any(g["archived"] for g in everything)
    assert {money_must, money_maybe, work_should} <= {str(g["id"]) for g in everything}
    assert gone not in {str(g["id"]) for g in everything}
    # List order (derived/readmodel.py): must > should > maybe, then target month.
    order = [({"must": 0, "should": 1, "maybe": 2}[g["priority"]], g["target_month"])
             for g in everything]
    assert order == sorted(order)
    assert ids("--month", "2033-02") == [money_must, work_should, money_maybe]
    assert ids("--month", "2033-02", "--slice", "MONEY") == [money_must, money_maybe]
    assert ids("--month", "2033-02", "--priority", "maybe") == [money_maybe]
    assert set(ids("--month", "2033-02", "--all")) == {money_must, money_maybe, work_should,
                                                       gone}
    refused(mo, "goal", "list", "--month", "2033-13", fields={"month": "real month"})


def test_people_output_shows_user_text_literally(mo: Mo) -> None:
    """Text that looks like rich markup is printed as is, not interpreted (or crashed on)."""
    summary = "Fix [/b] the [red]bike[/red]"
    added = mo("goal", "add", summary, "--slice", "leisure", "--priority", "maybe",
               "--month", "2034-06")
    assert added.code == 0 and added.stdout.startswith("Added goal ")
    listed = mo("goal", "list", "--month", "2034-06", COLUMNS="200")
    assert listed.code == 0, listed.stderr
    assert summary in listed.stdout


def test_parser_usage_errors_are_exit_2(mo: Mo) -> None:
    bad = mo("goal", "edit", str(uuid.uuid4()), "--expect-version", "abc", "--json")
    assert (bad.code, bad.error["code"]) == (2, "usage")
