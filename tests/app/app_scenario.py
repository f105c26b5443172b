"""A handler over the in-memory log with short command builders, for the app tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from app_fakes import FoldingGoalIndex, InMemoryEventLog

from mo_local.app import commands as c
from mo_local.app.achievement import GoalAchievement
from mo_local.app.handlers import CommandHandler
from mo_local.app.ports import CommandResult
from mo_local.domain.values import new_id

ACTOR = "tester"


@dataclass
class Scenario:
    """One device's command side: log, handler, index and achievement process."""

    log: InMemoryEventLog = field(default_factory=InMemoryEventLog)
    ticks: count[int] = field(default_factory=lambda: count(1))

    def __post_init__(self) -> None:
        self.handler = CommandHandler(self.log)
        self.index = FoldingGoalIndex(self.log)
        self.achievement = GoalAchievement(self.handler, self.index, clock=self.now)

    def now(self) -> str:
        """A strictly increasing timestamp."""
        tick = next(self.ticks)
        return f"2025-01-01T{tick // 3600 % 24:02d}:{tick // 60 % 60:02d}:{tick % 60:02d}Z"

    def run(self, command: c.Command) -> CommandResult:
        return self.handler.handle(command)

    def goal(self, summary: str = "learn Greek") -> str:
        goal_id = new_id()
        self.run(
            c.CreateGoal(
                aggregate_id=goal_id, actor=ACTOR, at=self.now(), summary=summary,
                slice="learning", priority="must", target_month="2025-09",
            )
        )
        return goal_id

    def project(self, goal_id: str | None = None, name: str = "course") -> str:
        project_id = new_id()
        self.run(
            c.CreateProject(
                aggregate_id=project_id, actor=ACTOR, at=self.now(), name=name,
                start_date="2025-01-01", target_date="2025-06-30", goal_id=goal_id,
            )
        )
        return project_id

    def status(self, project_id: str, status: str) -> CommandResult:
        return self.run(
            c.TransitionProjectStatus(
                aggregate_id=project_id, actor=ACTOR, at=self.now(), status=status
            )
        )

    def archive_project(self, project_id: str) -> CommandResult:
        return self.run(c.ArchiveProject(aggregate_id=project_id, actor=ACTOR, at=self.now()))

    def link(self, project_id: str, goal_id: str) -> CommandResult:
        return self.run(
            c.LinkProjectToGoal(
                aggregate_id=project_id, actor=ACTOR, at=self.now(), goal_id=goal_id
            )
        )
