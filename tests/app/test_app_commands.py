"""Commands as data and their idempotency fingerprint."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from mo_local.app.commands import (
    AddMilestone,
    CreateGoal,
    CreateProject,
    RefineGoal,
    fingerprint,
)
from mo_local.domain.values import new_id

GOAL = "11111111-1111-4111-8111-111111111111"
AT = "2025-01-01T00:00:00Z"


def create_goal(**overrides: object) -> CreateGoal:
    base = CreateGoal(
        aggregate_id=GOAL, actor="me", at=AT, summary="learn Greek", slice="Learning",
        priority="must", target_month="2025-09",
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_fingerprint_is_stable_hex_sha256() -> None:
    first = fingerprint(create_goal())
    assert first == fingerprint(create_goal())
    assert len(first) == 64 and int(first, 16) >= 0


def test_fingerprint_ignores_time_key_and_causation() -> None:
    base = fingerprint(create_goal())
    assert fingerprint(create_goal(at="2030-01-01T00:00:00Z")) == base
    assert fingerprint(create_goal(idempotency_key="k")) == base
    assert fingerprint(create_goal(causation_id="c", correlation_id="r")) == base


def test_fingerprint_ignores_generated_ids_of_creations() -> None:
    assert fingerprint(create_goal(aggregate_id=new_id())) == fingerprint(create_goal())
    one = AddMilestone(aggregate_id=GOAL, actor="me", at=AT, name="m", target_date="2025-01-02")
    two = AddMilestone(aggregate_id=GOAL, actor="me", at=AT, name="m", target_date="2025-01-02")
    assert one.milestone_id != two.milestone_id
    assert fingerprint(one) == fingerprint(two)


@pytest.mark.parametrize(
    "overrides",
    [{"summary": "learn Latin"}, {"slice": "Work"}, {"known_version": 0}, {"actor": "you"}],
)
def test_fingerprint_changes_with_what_is_asked(overrides: dict[str, object]) -> None:
    assert fingerprint(create_goal(**overrides)) != fingerprint(create_goal())


def test_fingerprint_distinguishes_command_types_with_same_fields() -> None:
    refine = RefineGoal(aggregate_id=GOAL, actor="me", at=AT, summary="x")
    assert fingerprint(refine) != fingerprint(create_goal(summary="x"))


def test_fingerprint_of_a_wrongly_typed_field_does_not_crash() -> None:
    odd = create_goal(summary=object())
    assert len(fingerprint(odd)) == 64


def test_commands_are_frozen_and_hide_domain_text() -> None:
    """INV-015: a command in a log line or traceback shows no domain text."""
    command = create_goal(summary="CANARY-summary")
    with pytest.raises(FrozenInstanceError):
        command.summary = "other"  # type: ignore[misc]
    assert "CANARY" not in repr(command)
    project = CreateProject(
        aggregate_id=GOAL, actor="me", at=AT, name="CANARY-name", start_date="2025-01-01",
        target_date="2025-02-01", description="CANARY-description",
    )
    assert "CANARY" not in repr(project)
    assert "CANARY" not in repr(
        AddMilestone(aggregate_id=GOAL, actor="me", at=AT, name="CANARY", target_date="2025-01-02")
    )
