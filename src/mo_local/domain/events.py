"""Domain events of goals and projects (DESIGN.md §3), with their payload codecs.

Each event is a frozen dataclass. `to_data()` gives JSON/CBOR-safe primitives;
`from_data()` re-validates every field with the value rules, so a malformed or
tampered payload becomes a `ValidationError`, never a half-built event. A field
name means the same thing in every event, which is why one codec table serves
them all. Fields holding domain text are `repr=False` (INV-015).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar, Self

from mo_local.domain.errors import ValidationError
from mo_local.domain.values import (
    Priority,
    ProjectStatus,
    Slice,
    TargetMonth,
    parse_date,
    parse_description,
    parse_id,
    parse_month,
    parse_name,
    parse_priority,
    parse_slice,
    parse_status,
    parse_summary,
    parse_timestamp,
)

GOAL = "goal"
PROJECT = "project"


@dataclass(frozen=True)
class _Codec:
    # Any: each codec handles the one value type of its field name.
    dump: Callable[[Any], object]
    load: Callable[[object], object]


def _enum_value(value: StrEnum) -> str:
    return value.value


def _as_text(value: object) -> str:
    return str(value)


def _iso_date(value: date) -> str:
    return value.isoformat()


_CODECS: dict[str, _Codec] = {
    "aggregate_id": _Codec(_as_text, lambda raw: parse_id(raw, "aggregate_id")),
    "at": _Codec(_as_text, parse_timestamp),
    "summary": _Codec(_as_text, parse_summary),
    "slice": _Codec(_enum_value, parse_slice),
    "priority": _Codec(_enum_value, parse_priority),
    "target_month": _Codec(_as_text, parse_month),
    "name": _Codec(_as_text, parse_name),
    "description": _Codec(_as_text, parse_description),
    "status": _Codec(_enum_value, parse_status),
    "start_date": _Codec(_iso_date, lambda raw: parse_date(raw, "start_date")),
    "target_date": _Codec(_iso_date, lambda raw: parse_date(raw, "target_date")),
    "goal_id": _Codec(_as_text, lambda raw: parse_id(raw, "goal_id")),
    "milestone_id": _Codec(_as_text, lambda raw: parse_id(raw, "milestone_id")),
}


@dataclass(frozen=True)
class DomainEvent:
    """Base of all events: which aggregate, and when (ISO-8601 UTC)."""

    aggregate_type: ClassVar[str]
    event_type: ClassVar[str]
    payload_version: ClassVar[int] = 1

    aggregate_id: str
    at: str

    def to_data(self) -> dict[str, object]:
        """The payload as JSON/CBOR-safe primitives (current payload version)."""
        return {f.name: _CODECS[f.name].dump(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Self:
        """Rebuild and re-validate an event from a current-version payload."""
        if not isinstance(data, Mapping):
            raise ValidationError.of("data", "must be a map")
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in fields(cls):
            if f.name not in data:
                errors[f.name] = "missing"
                continue
            try:
                values[f.name] = _CODECS[f.name].load(data[f.name])
            except ValidationError as exc:
                errors.update(exc.fields)
        if errors:
            raise ValidationError(errors)
        return cls(**values)


@dataclass(frozen=True)
class GoalEvent(DomainEvent):
    """An event of a goal aggregate."""

    aggregate_type: ClassVar[str] = GOAL


@dataclass(frozen=True)
class ProjectEvent(DomainEvent):
    """An event of a project aggregate."""

    aggregate_type: ClassVar[str] = PROJECT


# --- goal events ---------------------------------------------------------------------


@dataclass(frozen=True)
class GoalCreated(GoalEvent):
    """A goal was created."""

    event_type: ClassVar[str] = "GoalCreated"
    summary: str = field(repr=False)
    slice: Slice
    priority: Priority
    target_month: TargetMonth


@dataclass(frozen=True)
class GoalRefined(GoalEvent):
    """The goal's summary changed."""

    event_type: ClassVar[str] = "GoalRefined"
    summary: str = field(repr=False)


@dataclass(frozen=True)
class GoalRecategorized(GoalEvent):
    """The goal moved to another slice."""

    event_type: ClassVar[str] = "GoalRecategorized"
    slice: Slice


@dataclass(frozen=True)
class GoalRescheduled(GoalEvent):
    """The goal's target month changed."""

    event_type: ClassVar[str] = "GoalRescheduled"
    target_month: TargetMonth


@dataclass(frozen=True)
class GoalPrioritized(GoalEvent):
    """The goal's priority changed."""

    event_type: ClassVar[str] = "GoalPrioritized"
    priority: Priority


@dataclass(frozen=True)
class GoalAchieved(GoalEvent):
    """The goal was achieved."""

    event_type: ClassVar[str] = "GoalAchieved"


@dataclass(frozen=True)
class GoalUnachieved(GoalEvent):
    """The goal is no longer achieved."""

    event_type: ClassVar[str] = "GoalUnachieved"


@dataclass(frozen=True)
class GoalArchived(GoalEvent):
    """The goal was archived (hidden, frozen)."""

    event_type: ClassVar[str] = "GoalArchived"


# --- project events ------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectCreated(ProjectEvent):
    """A project was created (status planned, no goal, no milestones)."""

    event_type: ClassVar[str] = "ProjectCreated"
    # v1 had no description; the registry upcasts it.
    payload_version: ClassVar[int] = 2
    name: str = field(repr=False)
    start_date: date
    target_date: date
    description: str = field(repr=False)


@dataclass(frozen=True)
class ProjectStatusTransitioned(ProjectEvent):
    """The project's status changed."""

    event_type: ClassVar[str] = "ProjectStatusTransitioned"
    status: ProjectStatus


@dataclass(frozen=True)
class ProjectRescheduled(ProjectEvent):
    """The project's start and target dates changed."""

    event_type: ClassVar[str] = "ProjectRescheduled"
    start_date: date
    target_date: date


@dataclass(frozen=True)
class ProjectRenamed(ProjectEvent):
    """The project's name changed."""

    event_type: ClassVar[str] = "ProjectRenamed"
    name: str = field(repr=False)


@dataclass(frozen=True)
class ProjectDescribed(ProjectEvent):
    """The project's description changed."""

    event_type: ClassVar[str] = "ProjectDescribed"
    description: str = field(repr=False)


@dataclass(frozen=True)
class ProjectGoalAdded(ProjectEvent):
    """The project was linked to a goal."""

    event_type: ClassVar[str] = "ProjectGoalAdded"
    goal_id: str


@dataclass(frozen=True)
class ProjectGoalRemoved(ProjectEvent):
    """The project was unlinked from the goal it names."""

    event_type: ClassVar[str] = "ProjectGoalRemoved"
    goal_id: str


@dataclass(frozen=True)
class ProjectMilestoneAdded(ProjectEvent):
    """A milestone was added to the project."""

    event_type: ClassVar[str] = "ProjectMilestoneAdded"
    milestone_id: str
    name: str = field(repr=False)
    target_date: date


@dataclass(frozen=True)
class ProjectMilestoneRenamed(ProjectEvent):
    """A milestone's name changed."""

    event_type: ClassVar[str] = "ProjectMilestoneRenamed"
    milestone_id: str
    name: str = field(repr=False)


@dataclass(frozen=True)
class ProjectMilestoneRescheduled(ProjectEvent):
    """A milestone's target date changed."""

    event_type: ClassVar[str] = "ProjectMilestoneRescheduled"
    milestone_id: str
    target_date: date


@dataclass(frozen=True)
class ProjectMilestoneArchived(ProjectEvent):
    """A milestone was archived."""

    event_type: ClassVar[str] = "ProjectMilestoneArchived"
    milestone_id: str


@dataclass(frozen=True)
class ProjectArchived(ProjectEvent):
    """The project was archived (hidden, frozen)."""

    event_type: ClassVar[str] = "ProjectArchived"


GOAL_EVENTS: tuple[type[GoalEvent], ...] = (
    GoalCreated,
    GoalRefined,
    GoalRecategorized,
    GoalRescheduled,
    GoalPrioritized,
    GoalAchieved,
    GoalUnachieved,
    GoalArchived,
)

PROJECT_EVENTS: tuple[type[ProjectEvent], ...] = (
    ProjectCreated,
    ProjectStatusTransitioned,
    ProjectRescheduled,
    ProjectRenamed,
    ProjectDescribed,
    ProjectGoalAdded,
    ProjectGoalRemoved,
    ProjectMilestoneAdded,
    ProjectMilestoneRenamed,
    ProjectMilestoneRescheduled,
    ProjectMilestoneArchived,
    ProjectArchived,
)
