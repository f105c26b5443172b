"""Project rules of DESIGN.md §3 at the domain level."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from domain_samples import (
    AT,
    GOAL_ID,
    LATER,
    MILESTONE_ID,
    OTHER_GOAL_ID,
    OTHER_MILESTONE_ID,
    PROJECT_ID,
    START,
    TARGET,
    a_project,
    project_events,
    then,
)

from mo_local.domain import project as p
from mo_local.domain.errors import Conflict, NotFound, ValidationError
from mo_local.domain.events import (
    ProjectCreated,
    ProjectDescribed,
    ProjectGoalAdded,
    ProjectGoalRemoved,
    ProjectMilestoneAdded,
    ProjectRenamed,
    ProjectRescheduled,
)
from mo_local.domain.values import ProjectStatus


def with_milestone(day: date = date(2025, 4, 15), mid: str = MILESTONE_ID) -> p.Project:
    project = a_project()
    return then(
        project, p.add_milestone(project, milestone_id=mid, name="roof", target_date=day, at=LATER)
    )


def archived_project() -> p.Project:
    project = with_milestone()
    return then(project, p.archive_project(project, LATER))


def test_create_project_gives_planned_unlinked_state() -> None:
    project = a_project()
    assert project.id == PROJECT_ID
    assert project.status is ProjectStatus.PLANNED
    assert (project.start_date, project.target_date) == (START, TARGET)
    assert project.goal_id is None and project.milestones == ()
    assert project.created_at == project.updated_at == AT
    assert not project.archived


def test_create_with_goal_links_in_the_same_decision() -> None:
    events = project_events(GOAL_ID)
    assert [type(e) for e in events] == [ProjectCreated, ProjectGoalAdded]
    assert a_project(GOAL_ID).goal_id == GOAL_ID


def test_create_existing_project_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        p.create_project(
            a_project(), project_id=PROJECT_ID, name="x", start_date=START, target_date=TARGET,
            description="", at=AT,
        )


@pytest.mark.parametrize(
    ("start", "target", "ok"),
    [(START, START, True), (START, TARGET, True), (TARGET, START, False)],
)
def test_start_on_or_before_target(start: date, target: date, ok: bool) -> None:
    def create() -> list[object]:
        return list(p.create_project(
            None, project_id=PROJECT_ID, name="n", start_date=start, target_date=target,
            description="", at=AT,
        ))

    if ok:
        assert len(create()) == 1
    else:
        with pytest.raises(ValidationError) as info:
            create()
        assert info.value.fields == {
            "start_date": "start date must be on or before the target date"
        }
    project = a_project()
    if ok and (start, target) != (START, TARGET):
        moved = then(project, p.reschedule_project(project, start, target, LATER))
        assert moved.start_date == start
    elif not ok:
        with pytest.raises(ValidationError):
            p.reschedule_project(project, start, target, LATER)


def test_rename_and_describe() -> None:
    project = a_project()
    renamed = then(project, p.rename_project(project, "build a barn", LATER))
    assert renamed.name == "build a barn" and renamed.updated_at == LATER
    described = then(renamed, p.describe_project(renamed, "", LATER))
    assert described.description == ""
    with pytest.raises(ValidationError) as info:
        p.rename_project(project, "build a shed", LATER)
    assert info.value.fields == {"name": "unchanged"}
    with pytest.raises(ValidationError) as info:
        p.describe_project(project, "wood and nails", LATER)
    assert info.value.fields == {"description": "unchanged"}


@pytest.mark.parametrize(
    ("first", "second"), list(itertools.permutations(list(ProjectStatus), 2))
)
def test_any_status_may_change_to_any_other(first: ProjectStatus, second: ProjectStatus) -> None:
    project = a_project()
    if first is not project.status:
        project = then(project, p.transition_status(project, first, LATER))
    moved = then(project, p.transition_status(project, second, LATER))
    assert moved.status is second
    with pytest.raises(ValidationError) as info:
        p.transition_status(moved, second, LATER)
    assert info.value.fields == {"status": "unchanged"}


def test_reschedule_same_dates_is_unchanged() -> None:
    with pytest.raises(ValidationError) as info:
        p.reschedule_project(a_project(), START, TARGET, LATER)
    assert info.value.fields == {"dates": "unchanged"}


@pytest.mark.parametrize(
    ("start", "target", "field"),
    [
        (date(2025, 4, 16), TARGET, "start_date"),
        (START, date(2025, 4, 14), "target_date"),
    ],
)
def test_reschedule_must_keep_milestones_inside(start: date, target: date, field: str) -> None:
    project = with_milestone(date(2025, 4, 15))
    with pytest.raises(ValidationError) as info:
        p.reschedule_project(project, start, target, LATER)
    assert set(info.value.fields) == {field}


def test_reschedule_bounds_are_inclusive_and_archived_milestones_ignored() -> None:
    project = with_milestone(date(2025, 4, 15))
    day = date(2025, 4, 15)
    tight = then(project, p.reschedule_project(project, day, day, LATER))
    assert tight.start_date == tight.target_date == date(2025, 4, 15)
    gone = then(project, p.archive_milestone(project, MILESTONE_ID, LATER))
    moved = then(gone, p.reschedule_project(gone, date(2025, 5, 1), date(2025, 5, 2), LATER))
    assert moved.start_date == date(2025, 5, 1)


@pytest.mark.parametrize(
    ("day", "ok"),
    [(START, True), (TARGET, True), (date(2025, 2, 28), False), (date(2025, 7, 1), False)],
)
def test_milestone_date_within_project_dates(day: date, ok: bool) -> None:
    project = a_project()

    def add() -> list[object]:
        return list(p.add_milestone(
            project, milestone_id=MILESTONE_ID, name="m", target_date=day, at=LATER
        ))

    if ok:
        assert [type(e) for e in add()] == [ProjectMilestoneAdded]
    else:
        with pytest.raises(ValidationError) as info:
            add()
        assert set(info.value.fields) == {"target_date"}


def test_milestone_id_must_be_new() -> None:
    project = with_milestone()
    with pytest.raises(ValidationError) as info:
        p.add_milestone(project, milestone_id=MILESTONE_ID, name="again", target_date=START, at=AT)
    assert info.value.fields == {"milestone_id": "milestone already exists"}


def test_milestone_rename_reschedule_archive() -> None:
    project = with_milestone()
    renamed = then(project, p.rename_milestone(project, MILESTONE_ID, "walls", LATER))
    assert renamed.milestone(MILESTONE_ID) is not None
    assert renamed.milestone(MILESTONE_ID).name == "walls"  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as info:
        p.rename_milestone(renamed, MILESTONE_ID, "walls", LATER)
    assert info.value.fields == {"name": "unchanged"}
    moved = then(renamed, p.reschedule_milestone(renamed, MILESTONE_ID, TARGET, LATER))
    assert moved.milestones[0].target_date == TARGET
    with pytest.raises(ValidationError) as info:
        p.reschedule_milestone(moved, MILESTONE_ID, TARGET, LATER)
    assert info.value.fields == {"target_date": "unchanged"}
    with pytest.raises(ValidationError) as info:
        p.reschedule_milestone(moved, MILESTONE_ID, date(2025, 7, 1), LATER)
    assert set(info.value.fields) == {"target_date"}
    archived = then(moved, p.archive_milestone(moved, MILESTONE_ID, LATER))
    assert archived.milestones[0].archived


@pytest.mark.parametrize(
    "op",
    [
        lambda s: p.rename_milestone(s, MILESTONE_ID, "x", LATER),
        lambda s: p.reschedule_milestone(s, MILESTONE_ID, START, LATER),
        lambda s: p.archive_milestone(s, MILESTONE_ID, LATER),
    ],
    ids=["rename", "reschedule", "archive"],
)
def test_milestone_ops_need_an_existing_active_milestone(op: object) -> None:
    assert callable(op)
    with pytest.raises(NotFound) as missing:
        op(with_milestone(mid=OTHER_MILESTONE_ID))
    assert (missing.value.kind, missing.value.id) == ("milestone", MILESTONE_ID)
    project = with_milestone()
    archived = then(project, p.archive_milestone(project, MILESTONE_ID, LATER))
    with pytest.raises(ValidationError) as info:
        op(archived)
    assert info.value.fields == {"milestone_id": "milestone is archived"}


def test_link_unlink_and_move() -> None:
    project = a_project()
    with pytest.raises(ValidationError) as info:
        p.unlink_from_goal(project, LATER)
    assert info.value.fields == {"goal_id": "project is not linked to a goal"}
    linked = then(project, p.link_to_goal(project, GOAL_ID, LATER))
    assert linked.goal_id == GOAL_ID
    with pytest.raises(ValidationError) as info:
        p.link_to_goal(linked, GOAL_ID, LATER)
    assert info.value.fields == {"goal_id": "unchanged"}
    move = p.link_to_goal(linked, OTHER_GOAL_ID, LATER)
    assert [type(e) for e in move] == [ProjectGoalRemoved, ProjectGoalAdded]
    assert [e.goal_id for e in move] == [GOAL_ID, OTHER_GOAL_ID]  # type: ignore[attr-defined]
    moved = then(linked, move)
    assert moved.goal_id == OTHER_GOAL_ID
    unlink = p.unlink_from_goal(moved, LATER)
    assert [(type(e), e.goal_id) for e in unlink] == [  # type: ignore[attr-defined]
        (ProjectGoalRemoved, OTHER_GOAL_ID)
    ]
    assert then(moved, unlink).goal_id is None


ARCHIVED_OPS = [
    lambda s: p.rename_project(s, "other", LATER),
    lambda s: p.describe_project(s, "other", LATER),
    lambda s: p.reschedule_project(s, START, date(2025, 7, 1), LATER),
    lambda s: p.transition_status(s, ProjectStatus.COMPLETED, LATER),
    lambda s: p.link_to_goal(s, GOAL_ID, LATER),
    lambda s: p.unlink_from_goal(s, LATER),
    lambda s: p.add_milestone(
        s, milestone_id=OTHER_MILESTONE_ID, name="x", target_date=START, at=LATER
    ),
    lambda s: p.rename_milestone(s, MILESTONE_ID, "x", LATER),
    lambda s: p.reschedule_milestone(s, MILESTONE_ID, START, LATER),
    lambda s: p.archive_milestone(s, MILESTONE_ID, LATER),
    lambda s: p.edit_project(s, at=LATER, name="x"),
]


@pytest.mark.parametrize("op", ARCHIVED_OPS)
def test_no_change_on_archived_project(op: object) -> None:
    assert callable(op)
    with pytest.raises(ValidationError) as info:
        op(archived_project())
    assert info.value.fields == {"project": "project is archived"}


def test_archive_twice_is_a_noop() -> None:
    project = archived_project()
    assert project.archived and project.archived_at == LATER
    assert p.archive_project(project, LATER) == []


def test_edit_project_several_fields() -> None:
    project = with_milestone(date(2025, 4, 15))
    events = p.edit_project(
        project, at=LATER, name="build a shed", description="steel", target_date=date(2025, 5, 1)
    )
    assert [type(e) for e in events] == [ProjectDescribed, ProjectRescheduled]
    edited = then(project, events)
    assert (edited.description, edited.start_date, edited.target_date) == (
        "steel", START, date(2025, 5, 1)
    )
    with pytest.raises(ValidationError) as info:
        p.edit_project(project, at=LATER, name="build a shed", start_date=START)
    assert info.value.fields == {"name": "unchanged", "start_date": "unchanged"}
    with pytest.raises(ValidationError) as info:
        p.edit_project(project, at=LATER, target_date=date(2025, 4, 1))
    assert set(info.value.fields) == {"target_date"}
    with pytest.raises(ValidationError):
        p.edit_project(project, at=LATER)
    assert [type(e) for e in p.edit_project(project, at=LATER, name="barn")] == [ProjectRenamed]


def test_project_repr_hides_text() -> None:
    """INV-015: names and descriptions stay out of reprs."""
    project = with_milestone()
    assert "shed" not in repr(project) and "wood" not in repr(project)
    assert "roof" not in repr(project)
    assert "shed" not in repr(project_events())
