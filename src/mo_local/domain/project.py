"""The Project aggregate: state, reducer and decision functions (DESIGN.md §3).

As for goals, the reducer holds every rule and decision functions run the
events they build through it. Whether the linked goal exists and is active is
checked by the application layer, which can see other aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from mo_local.domain.copying import evolved
from mo_local.domain.errors import Conflict, EventRejected, NotFound, ValidationError
from mo_local.domain.events import (
    DomainEvent,
    ProjectArchived,
    ProjectCreated,
    ProjectDescribed,
    ProjectEvent,
    ProjectGoalAdded,
    ProjectGoalRemoved,
    ProjectMilestoneAdded,
    ProjectMilestoneArchived,
    ProjectMilestoneRenamed,
    ProjectMilestoneRescheduled,
    ProjectRenamed,
    ProjectRescheduled,
    ProjectStatusTransitioned,
)
from mo_local.domain.values import ProjectStatus

_DATES_RULE = "start date must be on or before the target date"
_MILESTONE_RULE = "milestone date must be within the project's start and target dates"
_KEEP_RULE = "every milestone must stay within the project's start and target dates"


@dataclass(frozen=True)
class Milestone:
    """A milestone of a project; archived milestones are kept but hidden."""

    id: str
    name: str = field(repr=False)
    target_date: date
    archived: bool = False


@dataclass(frozen=True)
class Project:
    """Current state of a project."""

    id: str
    name: str = field(repr=False)
    status: ProjectStatus
    start_date: date
    target_date: date
    description: str = field(repr=False)
    created_at: str
    updated_at: str
    goal_id: str | None = None
    milestones: tuple[Milestone, ...] = ()
    archived_at: str | None = None

    @property
    def archived(self) -> bool:
        """True once the project is archived."""
        return self.archived_at is not None

    def milestone(self, milestone_id: str) -> Milestone | None:
        """The milestone with this id (archived or not), if any."""
        return next((m for m in self.milestones if m.id == milestone_id), None)


def _unchanged(name: str) -> EventRejected:
    return EventRejected(f"{name} unchanged", field=name, is_conflict=False, message="unchanged")


def evolve_project(state: Project | None, event: DomainEvent) -> Project:
    """Apply one event; raise `EventRejected` when it is invalid at this position."""
    if not isinstance(event, ProjectEvent):
        raise EventRejected("not a project event", field="event")
    if isinstance(event, ProjectCreated):
        if state is not None:
            raise EventRejected("project exists", field="id", message="project already exists")
        if event.start_date > event.target_date:
            raise EventRejected("start after target", field="start_date", message=_DATES_RULE)
        return Project(
            id=event.aggregate_id,
            name=event.name,
            status=ProjectStatus.PLANNED,
            start_date=event.start_date,
            target_date=event.target_date,
            description=event.description,
            created_at=event.at,
            updated_at=event.at,
        )
    if state is None:
        raise EventRejected("project missing", field="id", message="project does not exist")
    if event.aggregate_id != state.id:
        raise EventRejected("other aggregate", field="id", message="event of another project")
    if state.archived_at is not None:  # `archived`, without a property call per event
        raise EventRejected(
            "project archived",
            field="project",
            is_conflict=not isinstance(event, ProjectArchived),
            message="project is archived",
        )
    return _apply_change(state, event)


def _apply_change(state: Project, event: ProjectEvent) -> Project:
    # Every change also sets updated_at; one replace per event, not two.
    if isinstance(event, ProjectStatusTransitioned):
        if event.status == state.status:
            raise _unchanged("status")
        return evolved(state, status=event.status, updated_at=event.at)
    if isinstance(event, ProjectRescheduled):
        return _reschedule(state, event)
    if isinstance(event, ProjectRenamed):
        if event.name == state.name:
            raise _unchanged("name")
        return evolved(state, name=event.name, updated_at=event.at)
    if isinstance(event, ProjectDescribed):
        if event.description == state.description:
            raise _unchanged("description")
        return evolved(state, description=event.description, updated_at=event.at)
    if isinstance(event, ProjectGoalAdded | ProjectGoalRemoved):
        return _relink(state, event)
    if isinstance(
        event,
        ProjectMilestoneAdded
        | ProjectMilestoneRenamed
        | ProjectMilestoneRescheduled
        | ProjectMilestoneArchived,
    ):
        return _change_milestone(state, event)
    if isinstance(event, ProjectArchived):
        return evolved(state, archived_at=event.at, updated_at=event.at)
    raise EventRejected("unknown project event", field="event")


def _reschedule(state: Project, event: ProjectRescheduled) -> Project:
    if (event.start_date, event.target_date) == (state.start_date, state.target_date):
        raise _unchanged("dates")
    if event.start_date > event.target_date:
        raise EventRejected("start after target", field="start_date", message=_DATES_RULE)
    for milestone in state.milestones:
        if milestone.archived:
            continue
        if milestone.target_date < event.start_date:
            raise EventRejected("milestone outside dates", field="start_date", message=_KEEP_RULE)
        if milestone.target_date > event.target_date:
            raise EventRejected("milestone outside dates", field="target_date", message=_KEEP_RULE)
    return evolved(
        state, start_date=event.start_date, target_date=event.target_date, updated_at=event.at
    )


def _relink(state: Project, event: ProjectGoalAdded | ProjectGoalRemoved) -> Project:
    if isinstance(event, ProjectGoalAdded):
        if state.goal_id == event.goal_id:
            raise _unchanged("goal_id")
        if state.goal_id is not None:
            raise EventRejected(
                "project linked", field="goal_id", message="project is already linked to a goal"
            )
        return evolved(state, goal_id=event.goal_id, updated_at=event.at)
    if state.goal_id is None:
        raise EventRejected(
            "project not linked",
            field="goal_id",
            is_conflict=False,
            message="project is not linked to a goal",
        )
    if state.goal_id != event.goal_id:
        raise EventRejected(
            "linked to another goal", field="goal_id", message="project is linked to another goal"
        )
    return evolved(state, goal_id=None, updated_at=event.at)


def _inside(state: Project, day: date) -> bool:
    return state.start_date <= day <= state.target_date


def _change_milestone(
    state: Project,
    event: ProjectMilestoneAdded
    | ProjectMilestoneRenamed
    | ProjectMilestoneRescheduled
    | ProjectMilestoneArchived,
) -> Project:
    current = state.milestone(event.milestone_id)
    if isinstance(event, ProjectMilestoneAdded):
        if current is not None:
            raise EventRejected(
                "milestone exists", field="milestone_id", message="milestone already exists"
            )
        if not _inside(state, event.target_date):
            raise EventRejected(
                "milestone outside dates", field="target_date", message=_MILESTONE_RULE
            )
        added = Milestone(event.milestone_id, event.name, event.target_date)
        return evolved(state, milestones=(*state.milestones, added), updated_at=event.at)
    if current is None:
        raise EventRejected(
            "milestone missing", field="milestone_id", message="milestone does not exist"
        )
    if current.archived:
        raise EventRejected(
            "milestone archived",
            field="milestone_id",
            is_conflict=not isinstance(event, ProjectMilestoneArchived),
            message="milestone is archived",
        )
    if isinstance(event, ProjectMilestoneRenamed):
        if event.name == current.name:
            raise _unchanged("name")
        changed = evolved(current, name=event.name)
    elif isinstance(event, ProjectMilestoneRescheduled):
        if event.target_date == current.target_date:
            raise _unchanged("target_date")
        if not _inside(state, event.target_date):
            raise EventRejected(
                "milestone outside dates", field="target_date", message=_MILESTONE_RULE
            )
        changed = evolved(current, target_date=event.target_date)
    else:
        changed = evolved(current, archived=True)
    milestones = tuple(changed if m.id == current.id else m for m in state.milestones)
    return evolved(state, milestones=milestones, updated_at=event.at)


def _checked(state: Project | None, events: list[ProjectEvent]) -> list[DomainEvent]:
    current = state
    for event in events:
        try:
            current = evolve_project(current, event)
        except EventRejected as exc:
            raise exc.as_validation_error() from None
    return list(events)


def create_project(
    state: Project | None,
    *,
    project_id: str,
    name: str,
    start_date: date,
    target_date: date,
    description: str,
    at: str,
    goal_id: str | None = None,
) -> list[DomainEvent]:
    """Create a project (optionally linked to a goal the caller has checked)."""
    if state is not None:
        raise Conflict("project already exists")
    events: list[ProjectEvent] = [
        ProjectCreated(project_id, at, name, start_date, target_date, description)
    ]
    if goal_id is not None:
        events.append(ProjectGoalAdded(project_id, at, goal_id))
    return _checked(None, events)


def rename_project(state: Project, name: str, at: str) -> list[DomainEvent]:
    """Change the name."""
    return _checked(state, [ProjectRenamed(state.id, at, name)])


def describe_project(state: Project, description: str, at: str) -> list[DomainEvent]:
    """Change the description."""
    return _checked(state, [ProjectDescribed(state.id, at, description)])


def reschedule_project(
    state: Project, start_date: date, target_date: date, at: str
) -> list[DomainEvent]:
    """Change both dates; every active milestone must stay inside."""
    return _checked(state, [ProjectRescheduled(state.id, at, start_date, target_date)])


def edit_project(
    state: Project,
    *,
    at: str,
    name: str | None = None,
    description: str | None = None,
    start_date: date | None = None,
    target_date: date | None = None,
) -> list[DomainEvent]:
    """Change several fields at once: one event per field that really changes.

    A missing date keeps its current value. Fields given with their current
    value are ignored unless nothing else changes ("unchanged").
    """
    given = {
        "name": name,
        "description": description,
        "start_date": start_date,
        "target_date": target_date,
    }
    if all(value is None for value in given.values()):
        raise ValidationError.of("edit", "give at least one of name, description, dates")
    if state.archived:
        raise ValidationError.of("project", "project is archived")
    events: list[ProjectEvent] = []
    if name is not None and name != state.name:
        events.append(ProjectRenamed(state.id, at, name))
    if description is not None and description != state.description:
        events.append(ProjectDescribed(state.id, at, description))
    start = start_date if start_date is not None else state.start_date
    target = target_date if target_date is not None else state.target_date
    if (start, target) != (state.start_date, state.target_date):
        events.append(ProjectRescheduled(state.id, at, start, target))
    if not events:
        raise ValidationError({key: "unchanged" for key, v in given.items() if v is not None})
    return _checked(state, events)


def transition_status(state: Project, status: ProjectStatus, at: str) -> list[DomainEvent]:
    """Change the status (any status to any other)."""
    return _checked(state, [ProjectStatusTransitioned(state.id, at, status)])


def link_to_goal(state: Project, goal_id: str, at: str) -> list[DomainEvent]:
    """Link to a goal; a project linked elsewhere moves (unlink + link)."""
    events: list[ProjectEvent] = []
    if state.goal_id is not None and state.goal_id != goal_id:
        events.append(ProjectGoalRemoved(state.id, at, state.goal_id))
    events.append(ProjectGoalAdded(state.id, at, goal_id))
    return _checked(state, events)


def unlink_from_goal(state: Project, at: str) -> list[DomainEvent]:
    """Unlink from the current goal; the project must be linked."""
    if state.archived:
        raise ValidationError.of("project", "project is archived")
    if state.goal_id is None:
        raise ValidationError.of("goal_id", "project is not linked to a goal")
    return _checked(state, [ProjectGoalRemoved(state.id, at, state.goal_id)])


def archive_project(state: Project, at: str) -> list[DomainEvent]:
    """Archive the project; archiving an archived project is a no-op (no events)."""
    if state.archived:
        return []
    return _checked(state, [ProjectArchived(state.id, at)])


def _require_milestone(state: Project, milestone_id: str) -> None:
    if state.milestone(milestone_id) is None:
        raise NotFound("milestone", milestone_id)


def add_milestone(
    state: Project, *, milestone_id: str, name: str, target_date: date, at: str
) -> list[DomainEvent]:
    """Add a milestone dated within the project's dates."""
    return _checked(state, [ProjectMilestoneAdded(state.id, at, milestone_id, name, target_date)])


def rename_milestone(state: Project, milestone_id: str, name: str, at: str) -> list[DomainEvent]:
    """Rename an existing, active milestone."""
    _require_milestone(state, milestone_id)
    return _checked(state, [ProjectMilestoneRenamed(state.id, at, milestone_id, name)])


def reschedule_milestone(
    state: Project, milestone_id: str, target_date: date, at: str
) -> list[DomainEvent]:
    """Move an existing, active milestone within the project's dates."""
    _require_milestone(state, milestone_id)
    return _checked(
        state, [ProjectMilestoneRescheduled(state.id, at, milestone_id, target_date)]
    )


def archive_milestone(state: Project, milestone_id: str, at: str) -> list[DomainEvent]:
    """Archive an existing, active milestone."""
    _require_milestone(state, milestone_id)
    return _checked(state, [ProjectMilestoneArchived(state.id, at, milestone_id)])
