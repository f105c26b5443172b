"""`evolved`: the reducers' fast copy of a frozen state must behave like dataclasses.replace."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from mo_local.domain.copying import evolved
from mo_local.domain.goal import Goal
from mo_local.domain.project import Milestone, Project
from mo_local.domain.values import Priority, ProjectStatus, Slice, TargetMonth

GOAL = Goal("3f1c2b9e-8d7a-4c6b-9e5f-1a2b3c4d5e6f", "Run", Slice.HEALTH, Priority.MUST,
            TargetMonth(2027, 5), "2026-01-01T00:00:00.000000Z")
PROJECT = Project("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "Shed", ProjectStatus.PLANNED,
                  date(2026, 1, 1), date(2026, 6, 1), "", "2026-01-01T00:00:00.000000Z",
                  "2026-01-01T00:00:00.000000Z",
                  milestones=(Milestone("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "Walls",
                                        date(2026, 3, 1)),))


@pytest.mark.parametrize(
    ("state", "changes"),
    [
        (GOAL, {"summary": "Run far"}),
        (GOAL, {"achieved_at": "2026-02-01T00:00:00.000000Z"}),
        (PROJECT, {"name": "Barn", "updated_at": "2026-02-01T00:00:00.000000Z"}),
        (PROJECT, {"milestones": (), "goal_id": None}),
        (PROJECT.milestones[0], {"archived": True}),
    ],
)
def test_evolved_equals_replace_and_stays_frozen(state: object, changes: dict[str, object]) -> None:
    original = dataclasses.replace(state)  # type: ignore[type-var]
    copy = evolved(state, **changes)
    expected = dataclasses.replace(state, **changes)  # type: ignore[type-var]
    assert copy == expected and hash(copy) == hash(expected) and repr(copy) == repr(expected)
    assert type(copy) is type(state) and copy is not state
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.name = "changed"  # type: ignore[attr-defined]
    assert state == original  # the original is untouched
    assert all(getattr(copy, k) == v for k, v in changes.items())


def test_evolved_refuses_a_field_the_state_does_not_have() -> None:
    with pytest.raises(TypeError, match="no field"):
        evolved(GOAL, summry="typo")
    assert GOAL.summary == "Run"
