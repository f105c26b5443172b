"""Loading aggregates for commands with the same total fold the projections use."""

from __future__ import annotations

from mo_local.app.ports import EventLog
from mo_local.domain.errors import ConcurrencyError, NotFound, ValidationError
from mo_local.domain.events import GOAL, PROJECT
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project


def load_goal(log: EventLog, goal_id: str) -> tuple[Goal | None, int]:
    """The goal's state (None if it does not exist) and its version."""
    state, version = log.load_state(GOAL, goal_id)
    if state is not None and not isinstance(state, Goal):
        raise NotFound(GOAL, goal_id)
    return state, version


def load_project(log: EventLog, project_id: str) -> tuple[Project | None, int]:
    """The project's state (None if it does not exist) and its version."""
    state, version = log.load_state(PROJECT, project_id)
    if state is not None and not isinstance(state, Project):
        raise NotFound(PROJECT, project_id)
    return state, version


class Loader:
    """Loads the aggregate one command targets and checks its `known_version`.

    The version counts every event of the aggregate's log, skipped ones too, so
    it matches the version the log's `append` expects.
    """

    def __init__(
        self, log: EventLog, aggregate_type: str, aggregate_id: str, known_version: int | None
    ) -> None:
        self._log = log
        self._type = aggregate_type
        self.aggregate_id = aggregate_id
        self._known = known_version
        self.version = 0

    def _check_version(self, version: int) -> None:
        self.version = version
        if self._known is not None and self._known != version:
            raise ConcurrencyError(self.aggregate_id, self._known, version)

    def goal_or_none(self) -> Goal | None:
        """The target goal, or None when it does not exist yet."""
        self._expect(GOAL)
        state, version = load_goal(self._log, self.aggregate_id)
        self._check_version(version)
        return state

    def existing_goal(self) -> Goal:
        """The target goal; `NotFound` (before any version check) when it does not exist."""
        self._expect(GOAL)
        state, version = load_goal(self._log, self.aggregate_id)
        if state is None:
            raise NotFound(GOAL, self.aggregate_id)
        self._check_version(version)
        return state

    def project_or_none(self) -> Project | None:
        """The target project, or None when it does not exist yet."""
        self._expect(PROJECT)
        state, version = load_project(self._log, self.aggregate_id)
        self._check_version(version)
        return state

    def existing_project(self) -> Project:
        """The target project; `NotFound` (before any version check) when it does not exist."""
        self._expect(PROJECT)
        state, version = load_project(self._log, self.aggregate_id)
        if state is None:
            raise NotFound(PROJECT, self.aggregate_id)
        self._check_version(version)
        return state

    def active_goal(self, goal_id: str) -> Goal:
        """Another goal a project links to: it must exist and not be archived."""
        goal, _version = load_goal(self._log, goal_id)
        if goal is None:
            raise NotFound(GOAL, goal_id)
        if goal.archived:
            raise ValidationError.of("goal_id", "goal is archived")
        return goal

    def _expect(self, aggregate_type: str) -> None:
        if aggregate_type != self._type:
            raise ValidationError.of("aggregate_type", f"must be {self._type}")
