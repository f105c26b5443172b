"""Real parts for the derived-state tests: a store file, a vault, the encrypted log, events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mo_local.crypto.kdf import KdfParams
from mo_local.crypto.vault import UnlockedVault, create_vault
from mo_local.derived.conflicts import ConflictRecord
from mo_local.derived.projector import Projector
from mo_local.derived.readmodel import ReadModel
from mo_local.domain.events import (
    DomainEvent,
    GoalCreated,
    ProjectCreated,
    ProjectGoalAdded,
    ProjectMilestoneAdded,
)
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project
from mo_local.domain.registry import encode_event
from mo_local.domain.values import Priority, Slice, TargetMonth
from mo_local.eventlog import EncryptedLog, Envelope
from mo_local.store.eventstore import EventStore
from mo_local.store.records import StoredEvent

KDF = KdfParams(8192, 1, 1)
AT = "2025-01-02T03:04:05.000000Z"
PASSPHRASE = "correct horse battery staple"
DEFAULT_MONTH = TargetMonth(2025, 6)


def new_id() -> str:
    """A fresh UUIDv4."""
    return str(uuid.uuid4())


def envelope(event: DomainEvent, device_id: str = "device") -> Envelope:
    """The envelope of a real domain event, as the application would write it."""
    event_type, payload_version, data = encode_event(event)
    return Envelope(event_type, payload_version, data, event.at, "tester", device_id)


@dataclass
class Env:
    """One device: a real store file, the vault, and the encrypted log over them."""

    path: Path
    vault: UnlockedVault
    store_id: str
    device_id: str = field(default_factory=new_id)
    store: EventStore = field(init=False)
    log: EncryptedLog = field(init=False)

    def __post_init__(self) -> None:
        self.store = EventStore.open(self.path, create=True)
        self.log = EncryptedLog(self.store, self.vault, self.store_id, self.device_id)

    def append(self, *events: DomainEvent) -> list[StoredEvent]:
        """Append events, one aggregate batch per run of events of the same aggregate."""
        stored: list[StoredEvent] = []
        for batch in _runs(events):
            first = batch[0]
            expected = self.store.current_version(first.aggregate_id)
            stored += self.log.append(
                first.aggregate_type,
                first.aggregate_id,
                expected,
                [envelope(e, self.device_id) for e in batch],
            )
        return stored

    def append_raw(self, aggregate_type: str, aggregate_id: str, env: Envelope) -> StoredEvent:
        """Append one hand-made envelope (e.g. an event type from a newer app)."""
        expected = self.store.current_version(aggregate_id)
        return self.log.append(aggregate_type, aggregate_id, expected, [env])[0]

    def projector(self, save_every: int = 50_000) -> Projector:
        """A projector over this device's store."""
        return Projector(self.store, self.log, self.vault, self.store_id, save_every=save_every)

    def reopen(self) -> None:
        """Close and reopen the store with a fresh log (so `log.opened` starts at 0)."""
        self.store.close()
        self.__post_init__()

    def close(self) -> None:
        """Release the store."""
        self.store.close()


def _runs(events: Iterable[DomainEvent]) -> list[list[DomainEvent]]:
    runs: list[list[DomainEvent]] = []
    for event in events:
        if runs and runs[-1][0].aggregate_id == event.aggregate_id:
            runs[-1].append(event)
        else:
            runs.append([event])
    return runs


def make_env(directory: Path, name: str = "mo.db") -> Env:
    """A new device with a new store and vault under `directory`."""
    store_id = new_id()
    vault = create_vault(store_id, PASSPHRASE, KDF).vault
    directory.mkdir(parents=True, exist_ok=True)
    return Env(directory / name, vault, store_id)


def goal_created(
    summary: str = "Run a marathon",
    slice: Slice = Slice.HEALTH,
    priority: Priority = Priority.MUST,
    month: TargetMonth = DEFAULT_MONTH,
    goal_id: str | None = None,
    at: str = AT,
) -> GoalCreated:
    """A GoalCreated event with sensible defaults."""
    return GoalCreated(goal_id or new_id(), at, summary, slice, priority, month)


def project_created(
    name: str = "Build a shed",
    start: date = date(2025, 3, 1),
    target: date = date(2025, 6, 30),
    description: str = "",
    project_id: str | None = None,
    at: str = AT,
) -> ProjectCreated:
    """A ProjectCreated event with sensible defaults."""
    return ProjectCreated(project_id or new_id(), at, name, start, target, description)


def linked(project_id: str, goal_id: str, at: str = AT) -> ProjectGoalAdded:
    """Link a project to a goal."""
    return ProjectGoalAdded(project_id, at, goal_id)


def milestone(project_id: str, name: str, day: date, at: str = AT) -> ProjectMilestoneAdded:
    """Add a milestone."""
    return ProjectMilestoneAdded(project_id, at, new_id(), name, day)


ModelState = tuple[dict[str, tuple[str, Goal | Project | None, int]], list[ConflictRecord], int]


def model_state(model: ReadModel) -> ModelState:
    """Everything a read model holds, in a comparable form (order of aggregates ignored)."""
    entries = {
        aggregate_id: (entry.aggregate_type, entry.state, entry.version)
        for aggregate_id, entry in model.entries()
    }
    return entries, list(model.conflicts()), model.applied
