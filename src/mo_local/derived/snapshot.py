"""Snapshot codec: the read model ⇄ canonical CBOR bytes (the plaintext of a cache).

Aggregates are rows (CBOR arrays) rather than maps: arrays cost nothing to
encode canonically and decode fast, which is what lets a large store open from
its cache in a fraction of a second. The layout is fixed by `SNAPSHOT_FORMAT`;
any change to a row is a new format number, and an unknown number is refused.

Decoding only ever sees bytes that AES-GCM authenticated under the device's
cache key, so the fast `cbor2.loads` is used; the shape is still checked and any
surprise becomes `SnapshotError` (the caller then drops the cache and rebuilds).
"""

from __future__ import annotations

import gc
from datetime import date

import cbor2

from mo_local.derived.conflicts import ConflictRecord
from mo_local.derived.readmodel import Entry, ReadModel
from mo_local.domain.copying import assembled
from mo_local.domain.errors import DomainError
from mo_local.domain.events import GOAL, PROJECT
from mo_local.domain.goal import Goal
from mo_local.domain.project import Milestone, Project
from mo_local.domain.values import Priority, ProjectStatus, Slice, TargetMonth

SNAPSHOT_FORMAT = 1

_SLICES = {s.value: s for s in Slice}
_PRIORITIES = {p.value: p for p in Priority}
_STATUSES = {s.value: s for s in ProjectStatus}


class SnapshotError(Exception):
    """The snapshot bytes are not a readable snapshot of this format (no content in message)."""


def _goal_row(goal: Goal, version: int) -> list[object]:
    month = goal.target_month
    return [
        goal.id,
        version,
        goal.summary,
        goal.slice.value,
        goal.priority.value,
        month.year,
        month.month,
        goal.created_at,
        goal.achieved_at,
        goal.archived_at,
    ]


def _project_row(project: Project, version: int) -> list[object]:
    milestones = [[m.id, m.name, m.target_date.isoformat(), m.archived] for m in project.milestones]
    return [
        project.id,
        version,
        project.name,
        project.status.value,
        project.start_date.isoformat(),
        project.target_date.isoformat(),
        project.description,
        project.created_at,
        project.updated_at,
        project.goal_id,
        project.archived_at,
        milestones,
    ]


def encode_snapshot(model: ReadModel) -> bytes:
    """Canonical CBOR of the model's states, versions and conflicts.

    Goals go in list order (a restored model then lists them without reordering),
    which also makes the bytes independent of the order the model was filled in.
    """
    goals = [_goal_row(goal, entry.version) for goal, entry in model.goals_in_list_order()]
    projects: list[list[object]] = []
    others: list[list[object]] = []
    for aggregate_id, entry in model.entries():
        state = entry.state
        if isinstance(state, Goal):
            continue  # above
        if isinstance(state, Project):
            projects.append(_project_row(state, entry.version))
        else:
            others.append([aggregate_id, entry.aggregate_type, entry.version])
    conflicts = [[c.event_id, c.aggregate_id, c.reason, c.at] for c in model.conflicts()]
    body = {
        "v": SNAPSHOT_FORMAT,
        "applied": model.applied,
        "goals": goals,
        "projects": projects,
        "others": others,
        "conflicts": conflicts,
    }
    # Rows hold only str/int/bool/None/lists, so cbor2's canonical mode is the
    # canonical encoding of DESIGN.md §5 without a second pass over every value.
    return bytes(cbor2.dumps(body, canonical=True))


def _goal(row: list[object], months: dict[tuple[int, int], TargetMonth]) -> tuple[str, Entry]:
    gid, version, summary, slice_, priority, year, month, created, achieved, archived = row
    # The usual row, checked field by field in one expression (a cache loads every
    # goal); anything else takes the general way below, which names what is wrong.
    if (
        type(gid) is str
        and type(version) is int
        and type(summary) is str
        and type(slice_) is str
        and type(priority) is str
        and type(year) is int
        and type(month) is int
        and type(created) is str
        and (achieved is None or type(achieved) is str)
        and (archived is None or type(archived) is str)
        and (known_month := months.get((year, month))) is not None
        and (known_slice := _SLICES.get(slice_)) is not None
        and (known_priority := _PRIORITIES.get(priority)) is not None
    ):
        # Every field checked above: the instance dictionary is filled at once (half
        # the cost of Goal's frozen __init__).
        goal = assembled(Goal, {
            "id": gid,
            "summary": summary,
            "slice": known_slice,
            "priority": known_priority,
            "target_month": known_month,
            "created_at": created,
            "achieved_at": achieved,
            "archived_at": archived,
        })
        return gid, Entry(GOAL, goal, version)
    key = (_int(year), _int(month))
    target_month = months.get(key)
    if target_month is None:
        # Few distinct months among many goals: each is built (and validated) once.
        target_month = months[key] = TargetMonth(*key)
    goal = Goal(
        id=_text(gid),
        summary=_text(summary),
        slice=_SLICES[_text(slice_)],
        priority=_PRIORITIES[_text(priority)],
        target_month=target_month,
        created_at=_text(created),
        achieved_at=_opt_text(achieved),
        archived_at=_opt_text(archived),
    )
    return goal.id, Entry(GOAL, goal, _int(version))


def _milestone(row: object) -> Milestone:
    if not isinstance(row, list):
        raise SnapshotError("snapshot milestone is not a row")
    mid, name, target, archived = row
    if not isinstance(archived, bool):
        raise SnapshotError("snapshot milestone flag is not a bool")
    return Milestone(_text(mid), _text(name), date.fromisoformat(_text(target)), archived)


def _project(row: list[object]) -> tuple[str, Entry]:
    (
        pid,
        version,
        name,
        status,
        start,
        target,
        description,
        created,
        updated,
        goal_id,
        archived,
        milestones,
    ) = row
    if not isinstance(milestones, list):
        raise SnapshotError("snapshot milestones are not a list")
    project = Project(
        id=_text(pid),
        name=_text(name),
        status=_STATUSES[_text(status)],
        start_date=date.fromisoformat(_text(start)),
        target_date=date.fromisoformat(_text(target)),
        description=_text(description),
        created_at=_text(created),
        updated_at=_text(updated),
        goal_id=_opt_text(goal_id),
        milestones=tuple(_milestone(m) for m in milestones),
        archived_at=_opt_text(archived),
    )
    return project.id, Entry(PROJECT, project, _int(version))


def _other(row: list[object]) -> tuple[str, Entry]:
    aggregate_id, aggregate_type, version = row
    return _text(aggregate_id), Entry(_text(aggregate_type), None, _int(version))


def _conflict(row: list[object]) -> ConflictRecord:
    event_id, aggregate_id, reason, at = row
    return ConflictRecord(_text(event_id), _text(aggregate_id), _text(reason), _text(at))


def decode_snapshot(data: bytes) -> ReadModel:
    """Rebuild a read model from `encode_snapshot` bytes; SnapshotError if anything is off.

    The cyclic garbage collector is paused meanwhile: a cache of 10,000 goals makes
    some 50,000 container objects, none of them garbage, and the collections their
    allocation would trigger only walk them (and the rest of the heap) again.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _decode_snapshot(data)
    finally:
        if paused:
            gc.enable()


def _decode_snapshot(data: bytes) -> ReadModel:
    try:
        body = cbor2.loads(data)
    except Exception:  # noqa: BLE001 - cbor2 raises several types; none may escape
        body = None
    if not isinstance(body, dict) or body.get("v") != SNAPSHOT_FORMAT:
        raise SnapshotError("unknown or unreadable snapshot format")
    try:
        entries: dict[str, Entry] = {}
        months: dict[tuple[int, int], TargetMonth] = {}
        for row in _rows(body["goals"]):
            aggregate_id, entry = _goal(row, months)
            entries[aggregate_id] = entry
        if len(entries) != len(body["goals"]):
            raise SnapshotError("snapshot lists an aggregate twice")
        for key, build in (("projects", _project), ("others", _other)):
            for row in _rows(body[key]):
                aggregate_id, entry = build(row)
                if aggregate_id in entries:
                    raise SnapshotError("snapshot lists an aggregate twice")
                entries[aggregate_id] = entry
        conflicts = [_conflict(row) for row in _rows(body["conflicts"])]
        applied = _int(body["applied"])
    except (KeyError, TypeError, ValueError, DomainError):
        # `from None`: library messages may quote values (domain text).
        raise SnapshotError("snapshot has an unexpected shape or value") from None
    model = ReadModel()
    model.restore(entries, conflicts, applied)
    return model


def _rows(value: object) -> list[list[object]]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise SnapshotError("snapshot section is not a list of rows")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise SnapshotError("snapshot field is not text")
    return value


def _opt_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SnapshotError("snapshot field is not an integer")
    return value
