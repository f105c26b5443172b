"""The Goal aggregate: state, reducer and decision functions (DESIGN.md §3).

The reducer holds every rule. A decision function builds the events a command
asks for and runs them through the reducer, so a command and a replay can never
disagree about what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mo_local.domain.copying import evolved
from mo_local.domain.errors import Conflict, EventRejected, ValidationError
from mo_local.domain.events import (
    DomainEvent,
    GoalAchieved,
    GoalArchived,
    GoalCreated,
    GoalEvent,
    GoalPrioritized,
    GoalRecategorized,
    GoalRefined,
    GoalRescheduled,
    GoalUnachieved,
)
from mo_local.domain.values import Priority, Slice, TargetMonth


@dataclass(frozen=True)
class Goal:
    """Current state of a goal."""

    id: str
    summary: str = field(repr=False)
    slice: Slice
    priority: Priority
    target_month: TargetMonth
    created_at: str
    achieved_at: str | None = None
    archived_at: str | None = None

    @property
    def achieved(self) -> bool:
        """True while the goal is achieved."""
        return self.achieved_at is not None

    @property
    def archived(self) -> bool:
        """True once the goal is archived."""
        return self.archived_at is not None


def _unchanged(name: str) -> EventRejected:
    # Applying it again would change nothing: harmless when replayed.
    return EventRejected(f"{name} unchanged", field=name, is_conflict=False, message="unchanged")


def evolve_goal(state: Goal | None, event: DomainEvent) -> Goal:
    """Apply one event; raise `EventRejected` when it is invalid at this position."""
    if not isinstance(event, GoalEvent):
        raise EventRejected("not a goal event", field="event")
    if isinstance(event, GoalCreated):
        if state is not None:
            raise EventRejected("goal exists", field="id", message="goal already exists")
        return Goal(
            id=event.aggregate_id,
            summary=event.summary,
            slice=event.slice,
            priority=event.priority,
            target_month=event.target_month,
            created_at=event.at,
        )
    if state is None:
        raise EventRejected("goal missing", field="id", message="goal does not exist")
    if event.aggregate_id != state.id:
        raise EventRejected("other aggregate", field="id", message="event of another goal")
    if state.archived_at is not None:  # `archived`, without a property call per event
        raise EventRejected(
            "goal archived",
            field="goal",
            is_conflict=not isinstance(event, GoalArchived),
            message="goal is archived",
        )
    return _apply_change(state, event)


def _apply_change(state: Goal, event: GoalEvent) -> Goal:
    # `evolved` copies the state with one field changed: replays run this once per
    # event, and a full constructor call costs about twice as much.
    if isinstance(event, GoalRefined):
        if event.summary == state.summary:
            raise _unchanged("summary")
        return evolved(state, summary=event.summary)
    if isinstance(event, GoalRecategorized):
        if event.slice == state.slice:
            raise _unchanged("slice")
        return evolved(state, slice=event.slice)
    if isinstance(event, GoalRescheduled):
        if event.target_month == state.target_month:
            raise _unchanged("target_month")
        return evolved(state, target_month=event.target_month)
    if isinstance(event, GoalPrioritized):
        if event.priority == state.priority:
            raise _unchanged("priority")
        return evolved(state, priority=event.priority)
    if isinstance(event, GoalAchieved):
        if state.achieved_at is not None:
            raise EventRejected(
                "goal achieved", field="goal", is_conflict=False, message="goal is already achieved"
            )
        return evolved(state, achieved_at=event.at)
    if isinstance(event, GoalUnachieved):
        if state.achieved_at is None:
            raise EventRejected(
                "goal not achieved", field="goal", is_conflict=False, message="goal is not achieved"
            )
        return evolved(state, achieved_at=None)
    if isinstance(event, GoalArchived):
        return evolved(state, archived_at=event.at)
    raise EventRejected("unknown goal event", field="event")


def _checked(state: Goal | None, events: list[GoalEvent]) -> list[DomainEvent]:
    current = state
    for event in events:
        try:
            current = evolve_goal(current, event)
        except EventRejected as exc:
            raise exc.as_validation_error() from None
    return list(events)


def create_goal(
    state: Goal | None,
    *,
    goal_id: str,
    summary: str,
    slice: Slice,
    priority: Priority,
    target_month: TargetMonth,
    at: str,
) -> list[DomainEvent]:
    """Create a goal; the id must be new."""
    if state is not None:
        raise Conflict("goal already exists")
    return _checked(None, [GoalCreated(goal_id, at, summary, slice, priority, target_month)])


def refine_goal(state: Goal, summary: str, at: str) -> list[DomainEvent]:
    """Change the summary."""
    return _checked(state, [GoalRefined(state.id, at, summary)])


def recategorize_goal(state: Goal, slice: Slice, at: str) -> list[DomainEvent]:
    """Move the goal to another slice."""
    return _checked(state, [GoalRecategorized(state.id, at, slice)])


def reschedule_goal(state: Goal, target_month: TargetMonth, at: str) -> list[DomainEvent]:
    """Change the target month."""
    return _checked(state, [GoalRescheduled(state.id, at, target_month)])


def prioritize_goal(state: Goal, priority: Priority, at: str) -> list[DomainEvent]:
    """Change the priority."""
    return _checked(state, [GoalPrioritized(state.id, at, priority)])


def edit_goal(
    state: Goal,
    *,
    at: str,
    summary: str | None = None,
    slice: Slice | None = None,
    priority: Priority | None = None,
    target_month: TargetMonth | None = None,
) -> list[DomainEvent]:
    """Change several fields at once: one event per field that really changes.

    Fields given with their current value are ignored unless nothing else
    changes, in which case each is reported "unchanged".
    """
    given = {
        "summary": summary,
        "slice": slice,
        "priority": priority,
        "target_month": target_month,
    }
    if all(value is None for value in given.values()):
        raise ValidationError.of("edit", "give at least one of summary, slice, priority, month")
    if state.archived:
        raise ValidationError.of("goal", "goal is archived")
    events: list[GoalEvent] = []
    if summary is not None and summary != state.summary:
        events.append(GoalRefined(state.id, at, summary))
    if slice is not None and slice != state.slice:
        events.append(GoalRecategorized(state.id, at, slice))
    if priority is not None and priority != state.priority:
        events.append(GoalPrioritized(state.id, at, priority))
    if target_month is not None and target_month != state.target_month:
        events.append(GoalRescheduled(state.id, at, target_month))
    if not events:
        raise ValidationError({name: "unchanged" for name, v in given.items() if v is not None})
    return _checked(state, events)


def achieve_goal(state: Goal, at: str) -> list[DomainEvent]:
    """Mark the goal achieved; it must not be achieved already."""
    return _checked(state, [GoalAchieved(state.id, at)])


def unachieve_goal(state: Goal, at: str) -> list[DomainEvent]:
    """Mark the goal not achieved; it must be achieved."""
    return _checked(state, [GoalUnachieved(state.id, at)])


def archive_goal(state: Goal, at: str) -> list[DomainEvent]:
    """Archive the goal; archiving an archived goal is a no-op (no events)."""
    if state.archived:
        return []
    return _checked(state, [GoalArchived(state.id, at)])

