"""Commands as data (DESIGN.md §4), and their idempotency fingerprint.

Fields hold raw input exactly as a caller gave it (text); the handler validates
them. Fields carrying domain text are `repr=False` so a command can be logged or
shown in a traceback without leaking it (INV-015).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import ClassVar

from mo_local.domain.events import GOAL, PROJECT
from mo_local.domain.values import new_id


@dataclass(frozen=True, kw_only=True)
class Command:
    """Common parts: target aggregate, concurrency and idempotency controls, actor, time."""

    aggregate_type: ClassVar[str]
    # Fields a caller generates afresh on every try; a retry must still match.
    generated_fields: ClassVar[frozenset[str]] = frozenset()

    aggregate_id: str
    actor: str
    at: str
    known_version: int | None = None
    idempotency_key: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None


# Not part of what a command asks for: the same request retried later, or caused
# by another event, must fingerprint the same.
_NOT_FINGERPRINTED = frozenset({"at", "idempotency_key", "causation_id", "correlation_id"})


def fingerprint(command: Command) -> str:
    """Stable SHA-256 over the canonical JSON of what the command asks for."""
    skipped = _NOT_FINGERPRINTED | command.generated_fields
    body: dict[str, object] = {"command": type(command).__name__}
    for f in fields(command):
        if f.name not in skipped:
            body[f.name] = getattr(command, f.name)
    # default=repr: a field of the wrong type must not crash here; validation rejects it later.
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- goals ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GoalCommand(Command):
    """A command on a goal."""

    aggregate_type: ClassVar[str] = GOAL


@dataclass(frozen=True, kw_only=True)
class CreateGoal(GoalCommand):
    """Create a goal with the (client-generated) `aggregate_id`."""

    generated_fields: ClassVar[frozenset[str]] = frozenset({"aggregate_id"})
    summary: str = field(repr=False)
    slice: str
    priority: str
    target_month: str


@dataclass(frozen=True, kw_only=True)
class RefineGoal(GoalCommand):
    """Change a goal's summary."""

    summary: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class RecategorizeGoal(GoalCommand):
    """Move a goal to another slice."""

    slice: str


@dataclass(frozen=True, kw_only=True)
class RescheduleGoal(GoalCommand):
    """Change a goal's target month."""

    target_month: str


@dataclass(frozen=True, kw_only=True)
class PrioritizeGoal(GoalCommand):
    """Change a goal's priority."""

    priority: str


@dataclass(frozen=True, kw_only=True)
class EditGoal(GoalCommand):
    """Change several goal fields at once (None = leave as is)."""

    summary: str | None = field(default=None, repr=False)
    slice: str | None = None
    priority: str | None = None
    target_month: str | None = None


@dataclass(frozen=True, kw_only=True)
class AchieveGoal(GoalCommand):
    """Mark a goal achieved."""


@dataclass(frozen=True, kw_only=True)
class UnachieveGoal(GoalCommand):
    """Mark a goal not achieved."""


@dataclass(frozen=True, kw_only=True)
class ArchiveGoal(GoalCommand):
    """Archive a goal (a no-op when already archived)."""


# --- projects ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProjectCommand(Command):
    """A command on a project."""

    aggregate_type: ClassVar[str] = PROJECT


@dataclass(frozen=True, kw_only=True)
class CreateProject(ProjectCommand):
    """Create a project with the (client-generated) `aggregate_id`, optionally linked."""

    generated_fields: ClassVar[frozenset[str]] = frozenset({"aggregate_id"})
    name: str = field(repr=False)
    start_date: str
    target_date: str
    description: str = field(default="", repr=False)
    goal_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RenameProject(ProjectCommand):
    """Change a project's name."""

    name: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class DescribeProject(ProjectCommand):
    """Change a project's description."""

    description: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class RescheduleProject(ProjectCommand):
    """Change a project's start and target dates."""

    start_date: str
    target_date: str


@dataclass(frozen=True, kw_only=True)
class EditProject(ProjectCommand):
    """Change several project fields at once (None = leave as is)."""

    name: str | None = field(default=None, repr=False)
    description: str | None = field(default=None, repr=False)
    start_date: str | None = None
    target_date: str | None = None


@dataclass(frozen=True, kw_only=True)
class TransitionProjectStatus(ProjectCommand):
    """Change a project's status."""

    status: str


@dataclass(frozen=True, kw_only=True)
class LinkProjectToGoal(ProjectCommand):
    """Link a project to a goal; a linked project moves to this goal."""

    goal_id: str


@dataclass(frozen=True, kw_only=True)
class UnlinkProject(ProjectCommand):
    """Unlink a project from its goal."""


@dataclass(frozen=True, kw_only=True)
class ArchiveProject(ProjectCommand):
    """Archive a project (a no-op when already archived)."""


@dataclass(frozen=True, kw_only=True)
class AddMilestone(ProjectCommand):
    """Add a milestone; its id is generated here and returned as `created_id`."""

    generated_fields: ClassVar[frozenset[str]] = frozenset({"milestone_id"})
    name: str = field(repr=False)
    target_date: str
    milestone_id: str = field(default_factory=new_id)


@dataclass(frozen=True, kw_only=True)
class RenameMilestone(ProjectCommand):
    """Rename a milestone."""

    milestone_id: str
    name: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class RescheduleMilestone(ProjectCommand):
    """Move a milestone to another date."""

    milestone_id: str
    target_date: str


@dataclass(frozen=True, kw_only=True)
class ArchiveMilestone(ProjectCommand):
    """Archive a milestone."""

    milestone_id: str
