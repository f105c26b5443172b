"""An in-memory EventLog and GoalIndex: fakes of the app layer's ports, for its tests.

The log round-trips every event through the real registry (encode → decode), so
what a handler appends must be storable; the index folds the project logs, the
way the store-backed read model will.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from mo_local.app.ports import CommandResult, EventMeta
from mo_local.domain.errors import ConcurrencyError
from mo_local.domain.events import GOAL, PROJECT, DomainEvent
from mo_local.domain.fold import fold, fold_project
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project
from mo_local.domain.registry import decode_event, encode_event


@dataclass
class StoredEvent:
    """One row of the fake log."""

    aggregate_type: str
    aggregate_id: str
    version: int
    event_type: str
    payload_version: int
    data: dict[str, object]
    meta: EventMeta


@dataclass
class InMemoryEventLog:
    """A list-backed EventLog that counts appends and transactions."""

    rows: list[StoredEvent] = field(default_factory=list)
    idempotency: dict[str, tuple[str, CommandResult]] = field(default_factory=dict)
    appends: int = 0
    open_transactions: int = 0

    def load(self, aggregate_type: str, aggregate_id: str) -> list[DomainEvent]:
        return [
            decode_event(r.event_type, r.payload_version, r.data)
            for r in self.rows
            if r.aggregate_type == aggregate_type and r.aggregate_id == aggregate_id
        ]

    def load_state(
        self, aggregate_type: str, aggregate_id: str
    ) -> tuple[Goal | Project | None, int]:
        events = self.load(aggregate_type, aggregate_id)
        return fold(aggregate_type, events)[0], len(events)

    def version(self, aggregate_type: str, aggregate_id: str) -> int:
        return sum(
            1
            for r in self.rows
            if r.aggregate_type == aggregate_type and r.aggregate_id == aggregate_id
        )

    def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        meta: EventMeta,
        idempotency: tuple[str, str, CommandResult] | None = None,
    ) -> int:
        assert self.open_transactions > 0, "append outside a transaction"
        assert events, "empty append"
        actual = self.version(aggregate_type, aggregate_id)
        if actual != expected_version:
            raise ConcurrencyError(aggregate_id, expected_version, actual)
        for offset, event in enumerate(events, start=1):
            assert event.aggregate_type == aggregate_type
            assert event.aggregate_id == aggregate_id
            event_type, payload_version, data = encode_event(event)
            self.rows.append(
                StoredEvent(
                    aggregate_type,
                    aggregate_id,
                    expected_version + offset,
                    event_type,
                    payload_version,
                    data,
                    meta,
                )
            )
        if idempotency is not None:
            key, fingerprint, result = idempotency
            assert key not in self.idempotency
            self.idempotency[key] = (fingerprint, result)
        self.appends += 1
        return expected_version + len(events)

    def find_idempotent(self, key: str) -> tuple[str, CommandResult] | None:
        return self.idempotency.get(key)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.open_transactions += 1
        try:
            yield
        finally:
            self.open_transactions -= 1

    def events_of(self, aggregate_type: str) -> list[StoredEvent]:
        return [r for r in self.rows if r.aggregate_type == aggregate_type]


@dataclass
class FoldingGoalIndex:
    """GoalIndex computed by folding every project in the fake log."""

    log: InMemoryEventLog

    def linked_projects(self, goal_id: str) -> list[tuple[str, str, bool]]:
        linked: list[tuple[str, str, bool]] = []
        for project_id in dict.fromkeys(r.aggregate_id for r in self.log.events_of(PROJECT)):
            state, _skips = fold_project(self.log.load(PROJECT, project_id))
            if state is not None and state.goal_id == goal_id:
                linked.append((state.id, state.status.value, state.archived))
        return linked

    def all_goal_ids(self) -> list[str]:
        return list(dict.fromkeys(r.aggregate_id for r in self.log.events_of(GOAL)))
