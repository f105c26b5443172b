"""Total, deterministic folding of an aggregate's events (DESIGN.md §6).

An event its rule rejects at its position is skipped, not fatal, and the skip is
reported. Both the command side and the projections fold with these functions,
so they agree on the state of every aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from mo_local.domain.errors import DomainError, EventRejected, ValidationError
from mo_local.domain.events import GOAL, PROJECT, DomainEvent
from mo_local.domain.goal import Goal, evolve_goal
from mo_local.domain.project import Project, evolve_project

AGGREGATE_TYPES: tuple[str, ...] = (GOAL, PROJECT)

State = TypeVar("State", Goal, Project)


@dataclass(frozen=True)
class Skip:
    """An event skipped because it is invalid at its position.

    `reason` is a short rule name (never user text); `is_conflict` is False when
    the skip changes nothing a user cares about (e.g. a repeated archive).
    """

    event: DomainEvent
    reason: str
    is_conflict: bool


def step(
    evolve: Callable[[State | None, DomainEvent], State],
    state: State | None,
    event: DomainEvent,
) -> tuple[State | None, Skip | None]:
    """Apply one event totally: the new state, or the old one plus a `Skip`."""
    try:
        return evolve(state, event), None
    except EventRejected as exc:
        return state, Skip(event, exc.reason, exc.is_conflict)
    except DomainError:
        return state, Skip(event, "invalid event", True)


def _fold(
    evolve: Callable[[State | None, DomainEvent], State], events: Iterable[DomainEvent]
) -> tuple[State | None, list[Skip]]:
    state: State | None = None
    skips: list[Skip] = []
    for event in events:
        state, skip = step(evolve, state, event)
        if skip is not None:
            skips.append(skip)
    return state, skips


def fold_goal(events: Iterable[DomainEvent]) -> tuple[Goal | None, list[Skip]]:
    """Fold a goal's events in order; never raises on invalid events."""
    return _fold(evolve_goal, events)


def fold_project(events: Iterable[DomainEvent]) -> tuple[Project | None, list[Skip]]:
    """Fold a project's events in order; never raises on invalid events."""
    return _fold(evolve_project, events)


def fold(
    aggregate_type: str, events: Iterable[DomainEvent]
) -> tuple[Goal | Project | None, list[Skip]]:
    """Fold the events of a "goal" or "project" aggregate (version = len(events))."""
    if aggregate_type == GOAL:
        return fold_goal(events)
    if aggregate_type == PROJECT:
        return fold_project(events)
    raise ValidationError.of("aggregate_type", "must be goal or project")


def step_any(
    aggregate_type: str, state: Goal | Project | None, event: DomainEvent
) -> tuple[Goal | Project | None, Skip | None]:
    """One total step for incremental projections that keep states of both types."""
    # `step` inlined for each type: read models call this once per event.
    if aggregate_type == GOAL and (state is None or isinstance(state, Goal)):
        try:
            return evolve_goal(state, event), None
        except EventRejected as exc:
            return state, Skip(event, exc.reason, exc.is_conflict)
        except DomainError:
            return state, Skip(event, "invalid event", True)
    if aggregate_type == PROJECT and (state is None or isinstance(state, Project)):
        try:
            return evolve_project(state, event), None
        except EventRejected as exc:
            return state, Skip(event, exc.reason, exc.is_conflict)
        except DomainError:
            return state, Skip(event, "invalid event", True)
    raise ValidationError.of("aggregate_type", "must be goal or project")
