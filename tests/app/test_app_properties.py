"""Property tests: random command sequences through the handler and the achievement process."""

from __future__ import annotations

from app_scenario import Scenario
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.app import commands as c
from mo_local.domain.errors import DomainError
from mo_local.domain.events import GOAL, PROJECT
from mo_local.domain.fold import fold

G1, G2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
P1, P2 = "33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444"
M1, M2 = "55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666"

# Mostly valid values, so that sequences get deep into the rules; a few invalid ones.
goal_ids = st.sampled_from([G1, G2] * 4 + ["not-an-id"])
project_ids = st.sampled_from([P1, P2] * 4 + ["P1"])
milestone_ids = st.sampled_from([M1, M2] * 3 + ["m"])
texts = st.sampled_from(["a", " b ", "c", "a", " b ", "c", "", "x" * 501, "é" * 200])
slices = st.sampled_from(["health", "Work", "money", "nope"])
priorities = st.sampled_from(["must", "maybe", "SHOULD", "x"])
months = st.sampled_from(["2025-01", "2999-12", "2025-06", "2025-13", "1999-01"])
dates = st.sampled_from(
    ["2025-01-01", "2025-03-15", "2025-06-30", "2025-02-29", "2024-02-29", "2026-01-01"]
)
statuses = st.sampled_from(["planned", "in_progress", "completed", "completed", "canceled", "x"])
common = {
    "actor": st.sampled_from(["device-a", "device-b"] * 4 + [""]),
    "at": st.sampled_from(["2025-01-01T00:00:00Z", "2025-06-01T12:00:00+02:00"] * 4 + ["now"]),
    "known_version": st.sampled_from([None] * 12 + [0, 1, 2, 3, -1]),
    "idempotency_key": st.sampled_from([None] * 12 + ["k1", "k2"]),
}


def goal_command(
    cls: type[c.GoalCommand], **fields: st.SearchStrategy[object]
) -> st.SearchStrategy[c.Command]:
    return st.builds(cls, aggregate_id=goal_ids, **common, **fields)


def project_command(
    cls: type[c.ProjectCommand], **fields: st.SearchStrategy[object]
) -> st.SearchStrategy[c.Command]:
    return st.builds(cls, aggregate_id=project_ids, **common, **fields)


optional = st.none
# (weight, strategy): archives are rare so that sequences keep working on live aggregates.
weighted: list[tuple[int, st.SearchStrategy[c.Command]]] = [
    (3, goal_command(c.CreateGoal, summary=texts, slice=slices, priority=priorities,
                     target_month=months)),
    (2, goal_command(c.RefineGoal, summary=texts)),
    (2, goal_command(c.RecategorizeGoal, slice=slices)),
    (2, goal_command(c.RescheduleGoal, target_month=months)),
    (2, goal_command(c.PrioritizeGoal, priority=priorities)),
    (3, goal_command(c.EditGoal, summary=optional() | texts, slice=optional() | slices,
                     priority=optional() | priorities, target_month=optional() | months)),
    (2, goal_command(c.AchieveGoal)),
    (2, goal_command(c.UnachieveGoal)),
    (1, goal_command(c.ArchiveGoal)),
    (3, project_command(c.CreateProject, name=texts, start_date=dates, target_date=dates,
                        description=texts, goal_id=optional() | goal_ids)),
    (2, project_command(c.RenameProject, name=texts)),
    (2, project_command(c.DescribeProject, description=texts)),
    (3, project_command(c.RescheduleProject, start_date=dates, target_date=dates)),
    (3, project_command(c.EditProject, name=optional() | texts, description=optional() | texts,
                        start_date=optional() | dates, target_date=optional() | dates)),
    (6, project_command(c.TransitionProjectStatus, status=statuses)),
    (4, project_command(c.LinkProjectToGoal, goal_id=goal_ids)),
    (2, project_command(c.UnlinkProject)),
    (1, project_command(c.ArchiveProject)),
    (6, project_command(c.AddMilestone, name=texts, target_date=dates,
                        milestone_id=milestone_ids)),
    (3, project_command(c.RenameMilestone, milestone_id=milestone_ids, name=texts)),
    (4, project_command(c.RescheduleMilestone, milestone_id=milestone_ids, target_date=dates)),
    (2, project_command(c.ArchiveMilestone, milestone_id=milestone_ids)),
]
commands: st.SearchStrategy[c.Command] = st.sampled_from(
    [strategy for weight, strategy in weighted for _ in range(weight)]
).flatmap(lambda strategy: strategy)


def setup() -> list[c.Command]:
    """Create both goals and both projects first, so later commands find them."""
    base = {"actor": "device-a", "at": "2025-01-01T00:00:00Z"}
    return [
        *(c.CreateGoal(aggregate_id=g, summary="goal", slice="work", priority="must",
                       target_month="2025-06", **base) for g in (G1, G2)),
        *(c.CreateProject(aggregate_id=p, name="project", start_date="2025-01-01",
                          target_date="2025-06-30", **base) for p in (P1, P2)),
    ]


@settings(max_examples=300, deadline=None)
@given(script=st.lists(st.tuples(commands, st.booleans()), min_size=10, max_size=60))
def test_random_commands_raise_only_domain_errors_and_keep_logs_clean(
    script: list[tuple[c.Command, bool]],
) -> None:
    s = Scenario()
    for command in setup():
        s.handler.handle(command)
    for command, react in script:
        rows_before = len(s.log.rows)
        try:
            result = s.handler.handle(command)
        except DomainError:
            assert len(s.log.rows) == rows_before  # a refused command writes nothing
            continue
        current = s.log.version(command.aggregate_type, result.aggregate_id)
        if len(s.log.rows) > rows_before:
            assert result.version == current
        else:  # a no-op, or a replayed idempotency key answering with the first result
            assert result.version <= current
        if react:
            s.achievement.react([G1, G2])

    for aggregate_type in (GOAL, PROJECT):
        ids = dict.fromkeys(r.aggregate_id for r in s.log.events_of(aggregate_type))
        for aggregate_id in ids:
            versions = [r.version for r in s.log.rows if r.aggregate_id == aggregate_id]
            assert versions == list(range(1, len(versions) + 1))
            state, skips = fold(aggregate_type, s.log.load(aggregate_type, aggregate_id))
            # Commands only ever append events valid at their position.
            assert state is not None and skips == []

    s.achievement.reconcile_all()
    for goal_id in s.index.all_goal_ids():
        goal, _ = s.handler.load_goal(goal_id)
        assert goal is not None
        active = [status for _p, status, archived in s.index.linked_projects(goal_id)
                  if not archived]
        if active and not goal.archived:
            assert goal.achieved == all(status == "completed" for status in active)
    rows = len(s.log.rows)
    assert s.achievement.reconcile_all() == [] and len(s.log.rows) == rows
