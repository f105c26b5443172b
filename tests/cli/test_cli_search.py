"""`mo search` through the real command: ranking, scopes, literal operators, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from cli_runner import Mo
from cli_support import (
    GOAL_KEYS,
    PROJECT_KEYS,
    add_goal,
    add_project,
    as_dict,
    log_grows,
    new_store,
    refused,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Mo, dict[str, str]]:
    """A store with goals and projects whose texts make the ranking tiers visible."""
    mo = new_store(tmp_path_factory, "search")
    ids = {
        "word": add_goal(mo, "Garden every weekend"),
        "prefix": add_goal(mo, "Gardening course"),
        "substring": add_goal(mo, "Visit the rosegarden"),
        "other": add_goal(mo, "Read more books"),
        "accent": add_goal(mo, "Open a café"),
        "archived_goal": add_goal(mo, "Garden party"),
        "in_name": add_project(mo, "Garden shed"),
        "in_text": add_project(mo, "Paint the fence", "2031-01-01", "2031-12-31",
                               "--description", "The fence around the garden"),
        "archived_project": add_project(mo, "Garden wall"),
    }
    mo.ok("goal", "archive", ids["archived_goal"])
    mo.ok("project", "archive", ids["archived_project"])
    return mo, ids


def search(mo: Mo, *args: str) -> tuple[list[str], list[str]]:
    """Ids of the goals and projects found, best first; checks the result's shape."""
    found = as_dict(mo.ok("search", *args))
    assert set(found) == {"goals", "projects"}
    goals: list[dict[str, Any]] = found["goals"]
    projects: list[dict[str, Any]] = found["projects"]
    assert all(set(g) == GOAL_KEYS for g in goals)
    assert all(set(p) == PROJECT_KEYS for p in projects)
    return [str(g["id"]) for g in goals], [str(p["id"]) for p in projects]


def test_search_ranks_words_then_prefixes_then_substrings_and_skips_archived(
    world: tuple[Mo, dict[str, str]],
) -> None:
    mo, ids = world
    goals, projects = search(mo, "garden")
    assert goals == [ids["word"], ids["prefix"], ids["substring"]]
    # A hit in a project's name outranks one in its description.
    assert projects == [ids["in_name"], ids["in_text"]]
    assert search(mo, "GARDEN") == (goals, projects)


def test_search_scopes(world: tuple[Mo, dict[str, str]]) -> None:
    mo, ids = world
    assert search(mo, "garden", "--goals") == ([ids["word"], ids["prefix"], ids["substring"]], [])
    assert search(mo, "garden", "--projects") == ([], [ids["in_name"], ids["in_text"]])


def test_search_folds_accents_and_answers_short_queries(
    world: tuple[Mo, dict[str, str]],
) -> None:
    mo, ids = world
    assert search(mo, "cafe") == ([ids["accent"]], [])
    goals, _projects = search(mo, "ga", "--goals")
    # Short queries: word starts first, then substrings.
    assert set(goals[:2]) == {ids["word"], ids["prefix"]}
    assert goals[2:] == [ids["substring"]]


def test_search_text_is_literal_and_must_not_be_empty(world: tuple[Mo, dict[str, str]]) -> None:
    mo, _ids = world
    # Read as FTS5 syntax, OR would find both the books and the garden goals.
    assert search(mo, "books OR garden") == ([], [])
    with log_grows(mo, by=0):
        refused(mo, "search", "   ", fields={"text": "1–200 characters"})
        refused(mo, "search", "x" * 201, fields={"text": "1–200 characters"})
