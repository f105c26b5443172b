"""Search: substring, prefix, ranking, hostile queries, archived, incremental, at-rest canary."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from derived_helpers import AT, Env, goal_created, make_env, milestone, project_created

from mo_local.derived.projector import Projector
from mo_local.derived.search import fts_literal
from mo_local.domain.events import (
    GoalArchived,
    GoalRefined,
    ProjectArchived,
    ProjectDescribed,
    ProjectRenamed,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def opened(env: Env) -> Projector:
    projector = env.projector()
    projector.open()
    return projector


def goal_hits(projector: Projector, text: str) -> list[str]:
    return [view.summary for view in projector.search(text, projects=False)[0]]


def project_hits(projector: Projector, text: str) -> list[str]:
    return [view.name for view in projector.search(text, goals=False)[1]]


def test_exact_word_ranks_above_prefix_above_substring(env: Env) -> None:
    env.append(
        goal_created("Ultramarathon training"),
        goal_created("Marathons every year"),
        goal_created("Run a marathon"),
        goal_created("Bake bread"),
    )
    projector = opened(env)
    assert goal_hits(projector, "marathon") == [
        "Run a marathon",
        "Marathons every year",
        "Ultramarathon training",
    ]
    prefixed = goal_hits(projector, "MARA")
    assert set(prefixed[:2]) == {"Run a marathon", "Marathons every year"}  # word prefixes
    assert prefixed[2:] == ["Ultramarathon training"]  # a substring only
    assert sorted(goal_hits(projector, "arath")) == [
        "Marathons every year",
        "Run a marathon",
        "Ultramarathon training",
    ]
    assert goal_hits(projector, "bread") == ["Bake bread"]
    assert goal_hits(projector, "pizza") == []


def test_substring_and_multi_word_queries(env: Env) -> None:
    env.append(goal_created("Learn to play the guitar"), goal_created("Guitar strings"))
    projector = opened(env)
    assert sorted(goal_hits(projector, "uita")) == ["Guitar strings", "Learn to play the guitar"]
    assert goal_hits(projector, "play guitar") == ["Learn to play the guitar"]
    assert goal_hits(projector, "pla gui") == ["Learn to play the guitar"]  # prefixes
    assert goal_hits(projector, "lay uit") == ["Learn to play the guitar"]  # substrings


def test_bm25_within_a_tier_prefers_name_hits_and_denser_text(env: Env) -> None:
    env.append(
        project_created("Garden", description="weeding"),
        project_created("Kitchen", description="herbs for the garden someday maybe later"),
    )
    projector = opened(env)
    assert project_hits(projector, "garden") == ["Garden", "Kitchen"]
    env.append(
        goal_created("Tidy the shed and also the attic and the cellar"), goal_created("Tidy shed")
    )
    projector.catch_up()
    assert goal_hits(projector, "shed") == [
        "Tidy shed",
        "Tidy the shed and also the attic and the cellar",
    ]


def test_short_queries_use_a_scan_with_word_starts_first(env: Env) -> None:
    env.append(
        goal_created("Run a marathon"), goal_created("Unwind daily"), goal_created("Bake bread")
    )
    projector = opened(env)
    assert goal_hits(projector, "un") == ["Unwind daily", "Run a marathon"]
    assert goal_hits(projector, "U") == ["Unwind daily", "Run a marathon"]
    assert goal_hits(projector, "zz") == []


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'",
        '""',
        "*",
        "a*",
        "NEAR",
        "NEAR(a b)",
        "-foo",
        "a OR b",
        "a AND",
        "NOT x",
        "^start",
        "summary:x",
        "(",
        ")",
        "{a b}",
        "+",
        "a\tb",
        "\\",
        "%_",
        "—",
        "x' OR '1'='1",
    ],
)
def test_hostile_queries_are_searched_literally(
    env: Env, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    env.append(
        goal_created("Plain goal"),
        goal_created(f"Has {query} inside"),
        project_created("Plain project"),
    )
    goals, projects = opened(env).search(query)
    assert f"Has {query} inside" in [g.summary for g in goals]
    assert "Plain goal" not in [g.summary for g in goals]
    assert projects == []
    assert not [r for r in caplog.records if r.name.startswith("mo_local.derived")]


def test_special_characters_are_searched_literally(env: Env) -> None:
    env.append(
        goal_created('Learn C++ & say "NEAR" -now'),
        goal_created("Read 3* reviews OR skip"),
        goal_created("Ordinary goal"),
    )
    projector = opened(env)
    assert goal_hits(projector, '"NEAR"') == ['Learn C++ & say "NEAR" -now']
    assert goal_hits(projector, "C++") == ['Learn C++ & say "NEAR" -now']
    assert goal_hits(projector, "-now") == ['Learn C++ & say "NEAR" -now']
    assert goal_hits(projector, "3* reviews OR") == ["Read 3* reviews OR skip"]
    assert fts_literal('a "b" c') == '"a ""b"" c"'


def test_archived_goals_and_projects_are_excluded(env: Env) -> None:
    kept = goal_created("Keep the garden")
    gone = goal_created("Old garden")
    kept_p = project_created("Garden beds")
    gone_p = project_created("Garden shed")
    env.append(kept, gone, GoalArchived(gone.aggregate_id, AT), kept_p, gone_p)
    projector = opened(env)
    assert project_hits(projector, "garden") == ["Garden beds", "Garden shed"]
    env.append(ProjectArchived(gone_p.aggregate_id, AT))
    projector.catch_up()
    goals, projects = projector.search("garden")
    assert [g.id for g in goals] == [kept.aggregate_id]
    assert [p.id for p in projects] == [kept_p.aggregate_id]
    assert goal_hits(projector, "ga") == ["Keep the garden"]  # the scan path too


def test_index_follows_changes_incrementally(env: Env) -> None:
    goal = goal_created("Learn Spanish")
    project = project_created("Flashcards", description="vocabulary decks")
    env.append(goal, project)
    projector = opened(env)
    assert goal_hits(projector, "spanish") == ["Learn Spanish"]
    assert project_hits(projector, "vocab") == ["Flashcards"]
    env.append(GoalRefined(goal.aggregate_id, AT, "Learn Italian"))
    env.append(
        ProjectRenamed(project.aggregate_id, AT, "Cards"),
        ProjectDescribed(project.aggregate_id, AT, "grammar drills"),
    )
    env.append(goal_created("Italian cooking"))
    projector.catch_up()
    assert goal_hits(projector, "spanish") == []
    assert sorted(goal_hits(projector, "italian")) == ["Italian cooking", "Learn Italian"]
    assert project_hits(projector, "vocab") == []
    assert project_hits(projector, "drill") == ["Cards"]


def test_search_survives_a_rebuild(env: Env) -> None:
    env.append(goal_created("Write a novel"))
    projector = opened(env)
    assert goal_hits(projector, "novel") == ["Write a novel"]
    env.append(goal_created("Novel ideas"))
    projector.rebuild()
    assert set(goal_hits(projector, "novel")) == {"Write a novel", "Novel ideas"}


def test_inv014_nothing_searchable_reaches_disk(env: Env, tmp_path: Path) -> None:
    """INV-014: canaries in every text field appear in no file after indexing and caching."""
    canaries = {
        "summary": "CanarySummaryQx81",
        "name": "CanaryNameZk52",
        "description": "CanaryDescriptionWv07",
        "milestone": "CanaryMilestoneJp33",
    }
    goal = goal_created(f"Goal {canaries['summary']}")
    project = project_created(
        f"Project {canaries['name']}", description=f"About {canaries['description']}"
    )
    env.append(
        goal, project, milestone(project.aggregate_id, canaries["milestone"], date(2025, 4, 1))
    )
    projector = opened(env)
    for text in canaries.values():
        goals, projects = projector.search(text[:12])
        assert goals or projects or text == canaries["milestone"]
    projector.close()
    with sqlite3.connect(":memory:") as probe:  # a :memory: database has no file
        assert probe.execute("PRAGMA database_list").fetchall()[0][2] == ""
    env.store.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "mo.db" for p in files)
    for path in files:
        data = path.read_bytes()
        for text in canaries.values():
            for encoded in (text.encode("utf-8"), text.encode("utf-16-le")):
                assert encoded not in data, f"{text} found in {path.name}"
    env.reopen()
