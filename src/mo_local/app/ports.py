"""Ports the application layer needs; the store-backed implementations live outside.

The handler sees the event log only through `EventLog`, and the achievement
process sees linked projects only through `GoalIndex` (a read model).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from mo_local.domain.events import DomainEvent
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project


@dataclass(frozen=True)
class EventMeta:
    """Envelope metadata stored with every event of one append."""

    occurred_at: str
    actor: str
    causation_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """Outcome of a command: the aggregate, its version after it, and any new id."""

    aggregate_id: str
    version: int
    created_id: str | None = None


class EventLog(Protocol):
    """The aggregate event log (on the device: the encrypted SQLite log)."""

    def load(self, aggregate_type: str, aggregate_id: str) -> list[DomainEvent]:
        """All events of the aggregate in version order ([] if none)."""
        ...

    def load_state(
        self, aggregate_type: str, aggregate_id: str
    ) -> tuple[Goal | Project | None, int]:
        """The aggregate's state, folded totally from its events (None if it has none
        or none applies), and its version: the number of its events, skipped ones too.

        `fold(aggregate_type, load(...))`; an implementation may keep it folded
        between calls, or take it from a read model that has folded every event with
        the same reducers (each aggregate's events in effective order, which is its
        version order whenever devices follow the protocol).
        """
        ...

    def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        meta: EventMeta,
        idempotency: tuple[str, str, CommandResult] | None = None,
    ) -> int:
        """Append atomically with the idempotency record (key, fingerprint, result).

        Returns the new version; raises `ConcurrencyError` when `expected_version`
        is stale, writing nothing.
        """
        ...

    def find_idempotent(self, key: str) -> tuple[str, CommandResult] | None:
        """(fingerprint, result) recorded under the key, if any."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """A unit of work: reads and the append inside it see one consistent log."""
        ...


class GoalIndex(Protocol):
    """Read side used by the achievement process."""

    def linked_projects(self, goal_id: str) -> list[tuple[str, str, bool]]:
        """(project_id, status, archived) of every project linked to the goal."""
        ...

    def all_goal_ids(self) -> list[str]:
        """Ids of every goal (archived included)."""
        ...
