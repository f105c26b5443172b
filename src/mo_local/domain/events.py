"""Domain events of goals and projects (DESIGN.md §3), with their payload codecs.

Each event is a frozen dataclass. `to_data()` gives JSON/CBOR-safe primitives;
`from_data()` re-validates every field with the value rules, so a malformed or
tampered payload becomes a `ValidationError`, never a half-built event. A field
name means the same thing in every event, which is why one codec table serves
them all. Fields holding domain text are `repr=False` (INV-015).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from enum import StrEnum
from operator import call
from typing import Any, ClassVar, Self

from mo_local.domain.errors import ValidationError
from mo_local.domain.values import (
    Priority,
    ProjectStatus,
    Slice,
    TargetMonth,
    date_parser,
    id_parser,
    parse_description,
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
    # Loaders take the raw value alone; id_parser/date_parser bind the field name.
    "aggregate_id": _Codec(_as_text, id_parser("aggregate_id")),
    "at": _Codec(_as_text, parse_timestamp),
    "summary": _Codec(_as_text, parse_summary),
    "slice": _Codec(_enum_value, parse_slice),
    "priority": _Codec(_enum_value, parse_priority),
    "target_month": _Codec(_as_text, parse_month),
    "name": _Codec(_as_text, parse_name),
    "description": _Codec(_as_text, parse_description),
    "status": _Codec(_enum_value, parse_status),
    "start_date": _Codec(_iso_date, date_parser("start_date")),
    "target_date": _Codec(_iso_date, date_parser("target_date")),
    "goal_id": _Codec(_as_text, id_parser("goal_id")),
    "milestone_id": _Codec(_as_text, id_parser("milestone_id")),
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
        """The payload as JSON/CBOR-safe primitives (current payload version).

        Keys come in canonical CBOR order (shorter first, then bytewise), so the
        canonical encoder of the sealed envelope finds them sorted already.
        """
        cls = type(self)
        names = _DUMP_ORDER.get(cls)
        if names is None:
            names = _DUMP_ORDER[cls] = tuple(
                sorted((f.name for f in fields(cls)), key=lambda n: (len(n.encode()), n.encode()))
            )
        return {name: _CODECS[name].dump(getattr(self, name)) for name in names}

    @classmethod
    def field_loaders(cls) -> tuple[tuple[str, ...], tuple[Callable[[object], object], ...]]:
        """The field names in declaration order and the loader (parser) of each.

        `cls(*(load(data[name]) ...))` is what `from_data` tries first; decoders that
        call it once per event (the registry) keep these at hand.
        """
        loaders = _LOADERS.get(cls)
        if loaders is None:
            names = tuple(f.name for f in fields(cls))
            loaders = _LOADERS[cls] = (names, tuple(_CODECS[name].load for name in names))
        return loaders

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Self:
        """Rebuild and re-validate an event from a current-version payload."""
        if type(data) is not dict and not isinstance(data, Mapping):
            raise ValidationError.of("data", "must be a map")
        loaders = _LOADERS.get(cls) or cls.field_loaders()
        try:
            # Fields in declaration order are the dataclass's positional parameters;
            # map() keeps the per-field loop in C (replays decode every event).
            loaded: Iterator[Any] = map(call, loaders[1], map(data.__getitem__, loaders[0]))
            return cls(*loaded)
        except (KeyError, ValidationError):
            pass  # the loop below names every missing or invalid field
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


# Per event class: field names in canonical CBOR key order (first encode).
_DUMP_ORDER: dict[type[DomainEvent], tuple[str, ...]] = {}
# Per event class: field names and their loaders in declaration order (first decode).
_Loaders = tuple[tuple[str, ...], tuple[Callable[[object], object], ...]]
_LOADERS: dict[type[DomainEvent], _Loaders] = {}


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
