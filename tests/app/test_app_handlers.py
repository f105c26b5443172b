"""CommandHandler against an in-memory EventLog fake (DESIGN.md §4)."""

from __future__ import annotations

import pytest
from app_fakes import InMemoryEventLog
from app_scenario import ACTOR, Scenario

from mo_local.app import commands as c
from mo_local.app.ports import CommandResult
from mo_local.domain.errors import ConcurrencyError, Conflict, NotFound, ValidationError
from mo_local.domain.events import GoalAchieved, GoalCreated
from mo_local.domain.values import new_id

AT = "2025-03-01T10:00:00+01:00"


@pytest.fixture
def s() -> Scenario:
    return Scenario()


def create_goal(goal_id: str, **overrides: object) -> c.CreateGoal:
    fields: dict[str, object] = {
        "aggregate_id": goal_id, "actor": ACTOR, "at": AT, "summary": "  learn Greek ",
        "slice": "LEARNING", "priority": "Must", "target_month": "2025-09",
    }
    fields.update(overrides)
    return c.CreateGoal(**fields)  # type: ignore[arg-type]


def test_create_goal_appends_one_event_with_meta(s: Scenario) -> None:
    goal_id = new_id()
    result = s.run(create_goal(goal_id))
    assert result == CommandResult(goal_id, 1, goal_id)
    [row] = s.log.rows
    assert (row.aggregate_type, row.aggregate_id, row.version, row.event_type) == (
        "goal", goal_id, 1, "GoalCreated"
    )
    assert row.meta.actor == ACTOR
    assert row.meta.occurred_at == "2025-03-01T09:00:00.000000Z"  # canonical UTC
    goal, version = s.handler.load_goal(goal_id)
    assert goal is not None and version == 1
    assert (goal.summary, goal.slice.value, goal.priority.value) == (
        "learn Greek", "Learning", "must"
    )


def test_all_field_errors_are_reported_together_and_nothing_written(s: Scenario) -> None:
    with pytest.raises(ValidationError) as info:
        s.run(create_goal("nope", summary=" ", slice="Sport", target_month="2025-13", at="now",
                          actor=""))
    assert set(info.value.fields) == {"id", "summary", "slice", "target_month", "at", "actor"}
    assert s.log.rows == [] and s.log.appends == 0


def test_inv015_validation_messages_do_not_echo_domain_text(s: Scenario) -> None:
    """INV-015: a rejected summary never appears in the error."""
    canary = "CANARY-" * 100
    with pytest.raises(ValidationError) as info:
        s.run(create_goal(new_id(), summary=canary))
    assert "CANARY" not in str(info.value) and "CANARY" not in repr(info.value.fields)


def test_idempotency_same_key_twice_appends_once_and_returns_first_result(s: Scenario) -> None:
    goal_id = new_id()
    first = s.run(create_goal(goal_id, idempotency_key="k1"))
    again = s.run(create_goal(goal_id, idempotency_key="k1", at="2025-03-02T00:00:00Z"))
    assert again == first
    assert s.log.appends == 1 and len(s.log.rows) == 1
    # A retry that generated a fresh id is still the same request.
    retry = s.run(create_goal(new_id(), idempotency_key="k1"))
    assert retry == first and s.log.appends == 1


def test_idempotency_same_key_other_command_is_a_conflict(s: Scenario) -> None:
    goal_id = new_id()
    s.run(create_goal(goal_id, idempotency_key="k1"))
    with pytest.raises(Conflict):
        s.run(create_goal(goal_id, idempotency_key="k1", summary="learn Latin"))
    with pytest.raises(Conflict):
        s.run(c.ArchiveGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, idempotency_key="k1"))
    assert s.log.appends == 1


def test_idempotency_record_is_written_with_the_events(s: Scenario) -> None:
    goal_id = s.goal()
    result = s.run(
        c.RefineGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, summary="x", idempotency_key="k2")
    )
    assert s.log.idempotency["k2"] == (
        c.fingerprint(c.RefineGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, summary="x")),
        result,
    )


def test_known_version_stale_is_a_concurrency_error(s: Scenario) -> None:
    goal_id = s.goal()
    ok = s.run(c.RefineGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, summary="a",
                            known_version=1))
    assert ok.version == 2
    with pytest.raises(ConcurrencyError) as info:
        s.run(c.RefineGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, summary="b",
                           known_version=1))
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert s.log.version("goal", goal_id) == 2
    with pytest.raises(ValidationError) as bad:
        s.run(c.RefineGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, summary="b",
                           known_version=-1))
    assert set(bad.value.fields) == {"known_version"}


def test_create_with_known_version_zero(s: Scenario) -> None:
    goal_id = new_id()
    assert s.run(create_goal(goal_id, known_version=0)).version == 1
    with pytest.raises(ConcurrencyError):
        s.run(create_goal(new_id(), known_version=3))


def test_create_existing_is_a_conflict(s: Scenario) -> None:
    goal_id = s.goal()
    with pytest.raises(Conflict):
        s.run(create_goal(goal_id))


def test_noop_archive_writes_nothing_and_returns_current_version(s: Scenario) -> None:
    goal_id = s.goal()
    first = s.run(c.ArchiveGoal(aggregate_id=goal_id, actor=ACTOR, at=AT))
    appends = s.log.appends
    again = s.run(c.ArchiveGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, idempotency_key="k"))
    assert first.version == again.version == 2
    assert s.log.appends == appends and "k" not in s.log.idempotency
    project_id = s.project()
    s.archive_project(project_id)
    assert s.archive_project(project_id).version == 2


def test_unknown_aggregate_is_not_found(s: Scenario) -> None:
    missing = new_id()
    with pytest.raises(NotFound) as info:
        s.run(c.AchieveGoal(aggregate_id=missing, actor=ACTOR, at=AT))
    assert (info.value.kind, info.value.id) == ("goal", missing)
    with pytest.raises(NotFound):
        s.status(missing, "completed")


def test_link_to_unknown_goal_is_not_found(s: Scenario) -> None:
    project_id = s.project()
    with pytest.raises(NotFound) as info:
        s.link(project_id, new_id())
    assert info.value.kind == "goal"
    with pytest.raises(NotFound):
        s.project(goal_id=new_id())
    assert s.log.version("project", project_id) == 1


def test_link_to_archived_goal_is_invalid(s: Scenario) -> None:
    goal_id = s.goal()
    s.run(c.ArchiveGoal(aggregate_id=goal_id, actor=ACTOR, at=AT))
    project_id = s.project()
    with pytest.raises(ValidationError) as info:
        s.link(project_id, goal_id)
    assert info.value.fields == {"goal_id": "goal is archived"}


def test_link_moves_a_linked_project_in_one_append(s: Scenario) -> None:
    first, second = s.goal(), s.goal()
    project_id = s.project(goal_id=first)
    assert s.log.version("project", project_id) == 2
    appends = s.log.appends
    assert s.link(project_id, second).version == 4
    assert s.log.appends == appends + 1
    assert [r.event_type for r in s.log.rows[-2:]] == ["ProjectGoalRemoved", "ProjectGoalAdded"]
    project, _ = s.handler.load_project(project_id)
    assert project is not None and project.goal_id == second
    s.run(c.UnlinkProject(aggregate_id=project_id, actor=ACTOR, at=AT))
    with pytest.raises(ValidationError):
        s.run(c.UnlinkProject(aggregate_id=project_id, actor=ACTOR, at=AT))


def test_edit_goal_appends_several_events_at_once(s: Scenario) -> None:
    goal_id = s.goal()
    result = s.run(c.EditGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, summary="speak Greek",
                              priority="should", target_month="2026-01"))
    assert result.version == 4 and s.log.appends == 2
    with pytest.raises(ValidationError) as info:
        s.run(c.EditGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, slice="learning"))
    assert info.value.fields == {"slice": "unchanged"}
    with pytest.raises(ValidationError) as info:
        s.run(c.EditGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, slice="nope", priority="x"))
    assert set(info.value.fields) == {"slice", "priority"}


def test_milestones_through_the_handler(s: Scenario) -> None:
    project_id = s.project()
    add = c.AddMilestone(aggregate_id=project_id, actor=ACTOR, at=AT, name="exam",
                         target_date="2025-06-01")
    result = s.run(add)
    assert result.created_id == add.milestone_id and result.version == 2
    s.run(c.RenameMilestone(aggregate_id=project_id, actor=ACTOR, at=AT,
                            milestone_id=add.milestone_id, name="final exam"))
    with pytest.raises(ValidationError) as info:
        s.run(c.RescheduleMilestone(aggregate_id=project_id, actor=ACTOR, at=AT,
                                    milestone_id=add.milestone_id, target_date="2025-07-01"))
    assert set(info.value.fields) == {"target_date"}
    with pytest.raises(ValidationError) as info:
        s.run(c.RescheduleProject(aggregate_id=project_id, actor=ACTOR, at=AT,
                                  start_date="2025-01-01", target_date="2025-05-31"))
    assert set(info.value.fields) == {"target_date"}
    with pytest.raises(NotFound) as missing:
        s.run(c.ArchiveMilestone(aggregate_id=project_id, actor=ACTOR, at=AT,
                                 milestone_id=new_id()))
    assert missing.value.kind == "milestone"
    with pytest.raises(ValidationError) as bad:
        s.run(c.ArchiveMilestone(aggregate_id=project_id, actor=ACTOR, at=AT,
                                 milestone_id="m1"))
    assert set(bad.value.fields) == {"milestone_id"}
    project, version = s.handler.load_project(project_id)
    assert project is not None and version == 3
    assert [m.name for m in project.milestones] == ["final exam"]


def test_project_edits_through_the_handler(s: Scenario) -> None:
    project_id = s.project()
    s.run(c.RenameProject(aggregate_id=project_id, actor=ACTOR, at=AT, name="  Greek B1 "))
    s.run(c.DescribeProject(aggregate_id=project_id, actor=ACTOR, at=AT, description="evenings"))
    s.run(c.EditProject(aggregate_id=project_id, actor=ACTOR, at=AT, start_date="2025-02-01"))
    with pytest.raises(ValidationError) as info:
        s.run(c.EditProject(aggregate_id=project_id, actor=ACTOR, at=AT,
                            target_date="2025-01-15"))
    assert set(info.value.fields) == {"start_date"}
    project, version = s.handler.load_project(project_id)
    assert project is not None and version == 4
    assert (project.name, project.description, project.start_date.isoformat()) == (
        "Greek B1", "evenings", "2025-02-01"
    )


def test_version_counts_skipped_events_in_the_log() -> None:
    """A skipped event still occupies a version: known_version is the log length."""
    log = InMemoryEventLog()
    s = Scenario(log=log)
    goal_id = s.goal()
    s.run(c.AchieveGoal(aggregate_id=goal_id, actor=ACTOR, at=AT))
    # Another device achieved it too; both events are in the log after a sync.
    with log.transaction():
        log.append("goal", goal_id, 2, [GoalAchieved(goal_id, "2025-01-01T00:00:00Z")],
                   log.rows[0].meta)
    goal, version = s.handler.load_goal(goal_id)
    assert goal is not None and goal.achieved and version == 3
    result = s.run(c.UnachieveGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, known_version=3))
    assert result.version == 4


def test_every_command_runs_inside_one_transaction(s: Scenario) -> None:
    goal_id = s.goal()
    assert s.log.open_transactions == 0
    s.run(c.PrioritizeGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, priority="maybe"))
    s.run(c.RecategorizeGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, slice="work"))
    s.run(c.RescheduleGoal(aggregate_id=goal_id, actor=ACTOR, at=AT, target_month="2027-01"))
    assert s.log.open_transactions == 0
    created = s.log.load("goal", goal_id)[0]
    assert isinstance(created, GoalCreated)


def test_unknown_aggregate_is_not_found_even_with_a_known_version(s: Scenario) -> None:
    with pytest.raises(NotFound):
        s.run(c.ArchiveProject(aggregate_id=new_id(), actor=ACTOR, at=AT, known_version=4))


def test_idempotency_key_must_be_sane(s: Scenario) -> None:
    with pytest.raises(ValidationError) as info:
        s.run(create_goal(new_id(), idempotency_key=""))
    assert set(info.value.fields) == {"idempotency_key"}
    with pytest.raises(ValidationError):
        s.run(create_goal(new_id(), idempotency_key="k" * 201))


def test_a_bare_command_is_refused_cleanly(s: Scenario) -> None:
    with pytest.raises(ValidationError) as info:
        s.run(c.Command(aggregate_id=new_id(), actor=ACTOR, at=AT))
    assert set(info.value.fields) == {"command"}
