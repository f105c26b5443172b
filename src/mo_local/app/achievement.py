"""The goal-achievement process manager (DESIGN.md §3).

A goal with at least one linked, non-archived project is achieved exactly when
all of those projects are completed. A goal with none is left alone, so a goal
achieved by hand without projects stays achieved. The process dispatches
ordinary commands whose idempotency key is derived from the goal's version and
the wanted outcome: replaying it (after a restart, a rebuild or a rebase) never
dispatches the same change twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from mo_local.app.commands import AchieveGoal, UnachieveGoal
from mo_local.app.handlers import CommandHandler
from mo_local.app.ports import CommandResult, GoalIndex
from mo_local.domain.errors import ConcurrencyError
from mo_local.domain.events import (
    DomainEvent,
    ProjectArchived,
    ProjectCreated,
    ProjectGoalAdded,
    ProjectGoalRemoved,
    ProjectStatusTransitioned,
)
from mo_local.domain.project import Project
from mo_local.domain.values import ProjectStatus, format_timestamp

ACHIEVEMENT_ACTOR = "goal-achievement"
_ATTEMPTS = 3


def utc_now() -> str:
    """The current time as canonical ISO-8601 UTC text."""
    return format_timestamp(datetime.now(UTC))


def achievement_key(goal_id: str, goal_version: int, wanted: bool) -> str:
    """The deterministic idempotency key of one achievement decision."""
    return f"achievement:{goal_id}:{goal_version}:{str(wanted).lower()}"


def goals_to_react(event: DomainEvent, project: Project | None) -> tuple[str, ...]:
    """Goals whose achievement may change after a project event.

    `project` is the project's state after the event. A move emits
    ProjectGoalRemoved then ProjectGoalAdded, so both goals are named.
    """
    if isinstance(event, ProjectGoalAdded | ProjectGoalRemoved):
        return (event.goal_id,)
    if isinstance(event, ProjectStatusTransitioned | ProjectArchived | ProjectCreated):
        if project is not None and project.goal_id is not None:
            return (project.goal_id,)
    return ()


class GoalAchievement:
    """Keeps each goal's achieved flag in line with its linked projects."""

    def __init__(
        self,
        handler: CommandHandler,
        index: GoalIndex,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._handler = handler
        self._index = index
        self._clock = clock

    def wanted(self, goal_id: str) -> bool | None:
        """Whether the goal should be achieved; None when no active project is linked."""
        active = [status for _id, status, archived in self._index.linked_projects(goal_id)
                  if not archived]
        if not active:
            return None
        return all(status == ProjectStatus.COMPLETED.value for status in active)

    def react(self, goal_ids: Iterable[str], *, at: str | None = None) -> list[CommandResult]:
        """Settle each goal once (duplicates ignored); results of dispatched commands."""
        results: list[CommandResult] = []
        for goal_id in dict.fromkeys(goal_ids):
            result = self._settle(goal_id, at)
            if result is not None:
                results.append(result)
        return results

    def reconcile_all(self, *, at: str | None = None) -> list[CommandResult]:
        """Settle every goal (run on start so a missed reaction is repaired)."""
        return self.react(self._index.all_goal_ids(), at=at)

    def _settle(self, goal_id: str, at: str | None) -> CommandResult | None:
        for attempt in range(_ATTEMPTS):
            goal, version = self._handler.load_goal(goal_id)
            if goal is None or goal.archived:
                return None
            wanted = self.wanted(goal_id)
            if wanted is None or wanted == goal.achieved:
                return None
            command_type = AchieveGoal if wanted else UnachieveGoal
            command = command_type(
                aggregate_id=goal_id,
                actor=ACHIEVEMENT_ACTOR,
                at=at if at is not None else self._clock(),
                known_version=version,
                idempotency_key=achievement_key(goal_id, version, wanted),
            )
            try:
                return self._handler.handle(command)
            except ConcurrencyError:
                # Another writer moved the goal between load and append: decide again.
                if attempt == _ATTEMPTS - 1:
                    raise
        return None
