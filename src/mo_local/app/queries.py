"""Query parameters and view objects with the JSON shapes of CLI.md.

Query dataclasses validate and canonicalise their parameters on construction
(e.g. slice "health" → "Health") so read models can compare plain values. The
read models themselves live in `derived/`; these are the shapes they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mo_local.domain.copying import assembled
from mo_local.domain.errors import ValidationError
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project
from mo_local.domain.values import (
    parse_id,
    parse_month,
    parse_priority,
    parse_slice,
    parse_status,
)

SEARCH_TEXT_MAX = 200


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses canonicalise in __post_init__ through object.__setattr__.
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class GetGoal:
    """One goal by id."""

    id: str

    def __post_init__(self) -> None:
        _set(self, "id", parse_id(self.id, "id"))


@dataclass(frozen=True)
class GetProject:
    """One project by id."""

    id: str

    def __post_init__(self) -> None:
        _set(self, "id", parse_id(self.id, "id"))


@dataclass(frozen=True)
class ListGoals:
    """Goals filtered by slice, priority and month; archived ones hidden unless asked."""

    slice: str | None = None
    priority: str | None = None
    month: str | None = None
    include_archived: bool = False

    def __post_init__(self) -> None:
        if self.slice is not None:
            _set(self, "slice", parse_slice(self.slice).value)
        if self.priority is not None:
            _set(self, "priority", parse_priority(self.priority).value)
        if self.month is not None:
            _set(self, "month", str(parse_month(self.month, "month")))

    def matches(self, goal: GoalView) -> bool:
        """True when the goal passes every filter."""
        return (
            (self.include_archived or not goal.archived)
            and self.slice in (None, goal.slice)
            and self.priority in (None, goal.priority)
            and self.month in (None, goal.target_month)
        )


@dataclass(frozen=True)
class ListProjects:
    """Projects filtered by goal (or unlinked) and status; archived hidden unless asked."""

    goal_id: str | None = None
    unlinked: bool = False
    status: str | None = None
    include_archived: bool = False

    def __post_init__(self) -> None:
        if self.goal_id is not None:
            if self.unlinked:
                raise ValidationError.of("unlinked", "cannot be combined with goal_id")
            _set(self, "goal_id", parse_id(self.goal_id, "goal_id"))
        if self.status is not None:
            _set(self, "status", parse_status(self.status).value)

    def matches(self, project: ProjectView) -> bool:
        """True when the project passes every filter."""
        return (
            (self.include_archived or not project.archived)
            and (not self.unlinked or project.goal_id is None)
            and self.goal_id in (None, project.goal_id)
            and self.status in (None, project.status)
        )


@dataclass(frozen=True)
class Search:
    """Full-text search over goal summaries and project names and descriptions."""

    text: str = field(repr=False)
    goals: bool = True
    projects: bool = True

    def __post_init__(self) -> None:
        text = self.text.strip() if isinstance(self.text, str) else ""
        if not 1 <= len(text) <= SEARCH_TEXT_MAX:
            raise ValidationError.of(
                "text", f"search text must be 1–{SEARCH_TEXT_MAX} characters after trimming"
            )
        _set(self, "text", text)
        if not (self.goals or self.projects):
            raise ValidationError.of("scope", "search goals, projects or both")


# "YYYY-MM" of each (year, month) a view was built for: at most 12,000 of them.
_MONTH_TEXT: dict[tuple[int, int], str] = {}


@dataclass(frozen=True)
class GoalView:
    """A goal as lists, `show` and search return it."""

    id: str
    summary: str = field(repr=False)
    slice: str
    priority: str
    target_month: str
    achieved: bool
    archived: bool
    created_at: str
    version: int
    project_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, goal: Goal, version: int, project_ids: tuple[str, ...] = ()) -> GoalView:
        """The view of a goal state at a version, with its linked projects.

        The first list after opening a store builds one per goal, so this fills the
        instance dictionary at once (`domain.copying.assembled`) instead of
        ten frozen-attribute assignments, and formats each month only once: about
        2 µs instead of 5 µs a goal. Every value comes from a valid state.
        """
        month = goal.target_month
        text = _MONTH_TEXT.get((month.year, month.month))
        if text is None:
            text = _MONTH_TEXT[(month.year, month.month)] = str(month)
        return assembled(cls, {
            "id": goal.id,
            "summary": goal.summary,
            "slice": goal.slice.value,
            "priority": goal.priority.value,
            "target_month": text,
            "achieved": goal.achieved_at is not None,
            "archived": goal.archived_at is not None,
            "created_at": goal.created_at,
            "version": version,
            "project_ids": tuple(project_ids),
        })

    def to_json(self) -> dict[str, object]:
        """The goal object of CLI.md."""
        return {
            "id": self.id,
            "summary": self.summary,
            "slice": self.slice,
            "priority": self.priority,
            "target_month": self.target_month,
            "achieved": self.achieved,
            "archived": self.archived,
            "created_at": self.created_at,
            "version": self.version,
            "project_ids": list(self.project_ids),
        }


@dataclass(frozen=True)
class MilestoneView:
    """An active milestone inside a project object."""

    id: str
    name: str = field(repr=False)
    target_date: str

    def to_json(self) -> dict[str, object]:
        """The milestone object of CLI.md."""
        return {"id": self.id, "name": self.name, "target_date": self.target_date}


@dataclass(frozen=True)
class ProjectView:
    """A project as lists, `show` and search return it (archived milestones left out)."""

    id: str
    name: str = field(repr=False)
    status: str
    start_date: str
    target_date: str
    description: str = field(repr=False)
    goal_id: str | None
    milestones: tuple[MilestoneView, ...]
    archived: bool
    created_at: str
    version: int

    @classmethod
    def of(cls, project: Project, version: int) -> ProjectView:
        """The view of a project state at a version; milestones by date."""
        active = sorted(
            (m for m in project.milestones if not m.archived), key=lambda m: m.target_date
        )
        return cls(
            id=project.id,
            name=project.name,
            status=project.status.value,
            start_date=project.start_date.isoformat(),
            target_date=project.target_date.isoformat(),
            description=project.description,
            goal_id=project.goal_id,
            milestones=tuple(
                MilestoneView(m.id, m.name, m.target_date.isoformat()) for m in active
            ),
            archived=project.archived,
            created_at=project.created_at,
            version=version,
        )

    def to_json(self) -> dict[str, object]:
        """The project object of CLI.md."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "start_date": self.start_date,
            "target_date": self.target_date,
            "description": self.description,
            "goal_id": self.goal_id,
            "milestones": [m.to_json() for m in self.milestones],
            "archived": self.archived,
            "created_at": self.created_at,
            "version": self.version,
        }
