"""From a command to new events: validate every field, load, then apply the domain rules.

All field errors of a command are reported together, before anything is loaded,
so invalid input is always a `ValidationError` whatever the state of the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from mo_local.app import commands as c
from mo_local.app.loading import Loader
from mo_local.domain import goal as g
from mo_local.domain import project as p
from mo_local.domain.errors import ValidationError
from mo_local.domain.events import DomainEvent
from mo_local.domain.values import (
    parse_date,
    parse_description,
    parse_id,
    parse_month,
    parse_name,
    parse_priority,
    parse_slice,
    parse_status,
    parse_summary,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """The events a command produces ([] = nothing to do) and any id it created."""

    events: list[DomainEvent]
    created_id: str | None = None


class FieldCheck:
    """Collects the field errors of one command, then raises them together."""

    def __init__(self) -> None:
        self._errors: dict[str, str] = {}

    def value(self, parse: Callable[[object, str], T], raw: object, field: str) -> T:
        """The parsed value, or a recorded error."""
        try:
            return parse(raw, field)
        except ValidationError as exc:
            self._errors.update(exc.fields)
            # Placeholder only: done() raises before any caller can use it.
            return cast(T, None)

    def optional(self, parse: Callable[[object, str], T], raw: object, field: str) -> T | None:
        """None stays None (field not given); anything else is parsed."""
        return None if raw is None else self.value(parse, raw, field)

    def fail(self, field: str, rule: str) -> None:
        """Record a rule broken by a field checked by hand."""
        self._errors[field] = rule

    def done(self) -> None:
        """Raise every recorded error at once, if any."""
        if self._errors:
            raise ValidationError(self._errors)


def decide(command: c.Command, at: str, check: FieldCheck, load: Loader) -> Decision:
    """Validate the command's fields, load its aggregate and decide the new events."""
    if isinstance(command, c.GoalCommand):
        created = load.aggregate_id if isinstance(command, c.CreateGoal) else None
        return Decision(_decide_goal(command, at, check, load), created_id=created)
    if isinstance(command, c.ProjectCommand):
        return _decide_project(command, at, check, load)
    raise ValidationError.of("command", "unknown command")


def _decide_goal(
    command: c.GoalCommand, at: str, check: FieldCheck, load: Loader
) -> list[DomainEvent]:
    match command:
        case c.CreateGoal():
            summary = check.value(parse_summary, command.summary, "summary")
            slice_ = check.value(parse_slice, command.slice, "slice")
            priority = check.value(parse_priority, command.priority, "priority")
            month = check.value(parse_month, command.target_month, "target_month")
            check.done()
            return g.create_goal(
                load.goal_or_none(),
                goal_id=load.aggregate_id,
                summary=summary,
                slice=slice_,
                priority=priority,
                target_month=month,
                at=at,
            )
        case c.RefineGoal():
            summary = check.value(parse_summary, command.summary, "summary")
            check.done()
            return g.refine_goal(load.existing_goal(), summary, at)
        case c.RecategorizeGoal():
            slice_ = check.value(parse_slice, command.slice, "slice")
            check.done()
            return g.recategorize_goal(load.existing_goal(), slice_, at)
        case c.RescheduleGoal():
            month = check.value(parse_month, command.target_month, "target_month")
            check.done()
            return g.reschedule_goal(load.existing_goal(), month, at)
        case c.PrioritizeGoal():
            priority = check.value(parse_priority, command.priority, "priority")
            check.done()
            return g.prioritize_goal(load.existing_goal(), priority, at)
        case c.EditGoal():
            new_summary = check.optional(parse_summary, command.summary, "summary")
            new_slice = check.optional(parse_slice, command.slice, "slice")
            new_priority = check.optional(parse_priority, command.priority, "priority")
            new_month = check.optional(parse_month, command.target_month, "target_month")
            check.done()
            return g.edit_goal(
                load.existing_goal(),
                at=at,
                summary=new_summary,
                slice=new_slice,
                priority=new_priority,
                target_month=new_month,
            )
        case c.AchieveGoal():
            check.done()
            return g.achieve_goal(load.existing_goal(), at)
        case c.UnachieveGoal():
            check.done()
            return g.unachieve_goal(load.existing_goal(), at)
        case c.ArchiveGoal():
            check.done()
            return g.archive_goal(load.existing_goal(), at)
    raise ValidationError.of("command", "unknown goal command")


def _decide_project(
    command: c.ProjectCommand, at: str, check: FieldCheck, load: Loader
) -> Decision:
    match command:
        case c.CreateProject():
            name = check.value(parse_name, command.name, "name")
            start = check.value(parse_date, command.start_date, "start_date")
            target = check.value(parse_date, command.target_date, "target_date")
            description = check.value(parse_description, command.description, "description")
            goal_id = check.optional(parse_id, command.goal_id, "goal_id")
            check.done()
            state = load.project_or_none()
            if goal_id is not None:
                load.active_goal(goal_id)
            events = p.create_project(
                state,
                project_id=load.aggregate_id,
                name=name,
                start_date=start,
                target_date=target,
                description=description,
                goal_id=goal_id,
                at=at,
            )
            return Decision(events, created_id=load.aggregate_id)
        case c.AddMilestone():
            milestone_id = check.value(parse_id, command.milestone_id, "milestone_id")
            name = check.value(parse_name, command.name, "name")
            target = check.value(parse_date, command.target_date, "target_date")
            check.done()
            events = p.add_milestone(
                load.existing_project(),
                milestone_id=milestone_id,
                name=name,
                target_date=target,
                at=at,
            )
            return Decision(events, created_id=milestone_id)
    return Decision(_change_project(command, at, check, load))


def _change_project(
    command: c.ProjectCommand, at: str, check: FieldCheck, load: Loader
) -> list[DomainEvent]:
    match command:
        case c.RenameProject():
            name = check.value(parse_name, command.name, "name")
            check.done()
            return p.rename_project(load.existing_project(), name, at)
        case c.DescribeProject():
            description = check.value(parse_description, command.description, "description")
            check.done()
            return p.describe_project(load.existing_project(), description, at)
        case c.RescheduleProject():
            start = check.value(parse_date, command.start_date, "start_date")
            target = check.value(parse_date, command.target_date, "target_date")
            check.done()
            return p.reschedule_project(load.existing_project(), start, target, at)
        case c.EditProject():
            new_name = check.optional(parse_name, command.name, "name")
            new_text = check.optional(parse_description, command.description, "description")
            new_start = check.optional(parse_date, command.start_date, "start_date")
            new_target = check.optional(parse_date, command.target_date, "target_date")
            check.done()
            return p.edit_project(
                load.existing_project(),
                at=at,
                name=new_name,
                description=new_text,
                start_date=new_start,
                target_date=new_target,
            )
        case c.TransitionProjectStatus():
            status = check.value(parse_status, command.status, "status")
            check.done()
            return p.transition_status(load.existing_project(), status, at)
        case c.LinkProjectToGoal():
            goal_id = check.value(parse_id, command.goal_id, "goal_id")
            check.done()
            project = load.existing_project()
            load.active_goal(goal_id)
            return p.link_to_goal(project, goal_id, at)
        case c.UnlinkProject():
            check.done()
            return p.unlink_from_goal(load.existing_project(), at)
        case c.ArchiveProject():
            check.done()
            return p.archive_project(load.existing_project(), at)
        case c.RenameMilestone():
            milestone_id = check.value(parse_id, command.milestone_id, "milestone_id")
            name = check.value(parse_name, command.name, "name")
            check.done()
            return p.rename_milestone(load.existing_project(), milestone_id, name, at)
        case c.RescheduleMilestone():
            milestone_id = check.value(parse_id, command.milestone_id, "milestone_id")
            target = check.value(parse_date, command.target_date, "target_date")
            check.done()
            return p.reschedule_milestone(load.existing_project(), milestone_id, target, at)
        case c.ArchiveMilestone():
            milestone_id = check.value(parse_id, command.milestone_id, "milestone_id")
            check.done()
            return p.archive_milestone(load.existing_project(), milestone_id, at)
    raise ValidationError.of("command", "unknown project command")
