"""The read model: every aggregate's state, folded in effective order (DESIGN.md §6).

It is kept in memory while the vault is unlocked and persisted only as an
encrypted cache (`derived/cache.py`). `apply` is total: an event that cannot be
read (e.g. written by a newer app version) or that its rule rejects at its
position is skipped, and the skip is recorded as a conflict when it matters to
the user. Because `apply` uses the domain's `step_any`, the command side (which
folds with the same reducers) and the read model agree on every state.

List order (deterministic):
- goals: priority must > should > maybe, then target month, then created_at, then id;
- projects: target date, then name (case-insensitively, then exactly), then id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from mo_local.app.queries import GoalView, ListGoals, ListProjects, ProjectView
from mo_local.derived.conflicts import (
    INVALID_EVENT,
    OTHER_AGGREGATE,
    UNKNOWN_AGGREGATE_TYPE,
    UNREADABLE_EVENT,
    ConflictRecord,
)
from mo_local.domain.errors import DomainError
from mo_local.domain.events import GOAL, PROJECT
from mo_local.domain.fold import step_any
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project
from mo_local.domain.registry import decode_event
from mo_local.domain.values import Priority
from mo_local.eventlog import OpenedEvent

State = Goal | Project | None

_KNOWN_TYPES = frozenset({GOAL, PROJECT})


class Entry:
    """One aggregate in the read model: type, current state, version (events seen).

    Mutable on purpose, and shared only with the snapshot codec: replacing a frozen
    value on every event would double the per-event cost of a rebuild.
    """

    __slots__ = ("aggregate_type", "state", "version", "view")

    def __init__(self, aggregate_type: str, state: State = None, version: int = 0) -> None:
        self.aggregate_type = aggregate_type
        self.state = state
        self.version = version
        # The last view built of this entry; None whenever something it shows changed.
        self.view: GoalView | ProjectView | None = None


@dataclass(frozen=True, slots=True)
class AggregateState:
    """What the command side needs of one aggregate: its type, state and version."""

    aggregate_type: str
    state: Goal | Project | None
    version: int


class ReadModel:
    """States of all aggregates, the goal → projects index and the conflict log."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        # goal id → ids of projects linked to it (archived projects included).
        self._links: dict[str, set[str]] = {}
        self._conflicts: list[ConflictRecord] = []
        # Aggregates changed since the search index last looked (see take_changes).
        self._changed: set[str] = set()
        self.applied = 0
        # Effective-order positions of the conflicts, kept only when asked for: a
        # model folded from one partition of the aggregates (derived/parallel.py)
        # needs them to interleave its conflicts with the other partitions'.
        self._positions: list[tuple[int, int]] | None = None

    # -- writing ------------------------------------------------------------------

    def apply(self, opened: OpenedEvent) -> None:
        """Fold one event (in effective order) into the model; never raises on bad events."""
        stored, envelope = opened
        aggregate_id = stored.aggregate_id
        aggregate_type = stored.aggregate_type
        self.applied += 1
        entry = self._entries.get(aggregate_id)
        if entry is None:
            entry = self._entries[aggregate_id] = Entry(aggregate_type)
        # The version counts every event of the aggregate, skipped ones too, so it
        # matches the version the log expects for the next append.
        entry.version += 1
        entry.view = None
        # Advance the entry, or find why the event is skipped (one frame: once per
        # event of a replay).
        reason: str | None
        if aggregate_type != entry.aggregate_type or aggregate_type not in _KNOWN_TYPES:
            reason = UNKNOWN_AGGREGATE_TYPE
        else:
            try:
                event = decode_event(envelope.event_type, envelope.payload_version, envelope.data)
            except DomainError:
                event = None
            if event is None:
                reason = UNREADABLE_EVENT
            elif event.aggregate_id != aggregate_id or event.aggregate_type != aggregate_type:
                reason = OTHER_AGGREGATE
            else:
                before = entry.state
                try:
                    after, skip = step_any(aggregate_type, before, event)
                except DomainError:
                    reason = INVALID_EVENT
                else:
                    if skip is not None:
                        reason = skip.reason if skip.is_conflict else None
                    else:
                        reason = None
                        entry.state = after
                        self._changed.add(aggregate_id)
                        if aggregate_type == PROJECT:
                            self._project_changed(aggregate_id, before, after)
        if reason is not None:
            self._conflicts.append(
                ConflictRecord(stored.event_id, aggregate_id, reason, envelope.occurred_at)
            )
            if self._positions is not None:
                synced = stored.global_seq
                self._positions.append(
                    (1, stored.commit_seq) if synced is None else (0, synced)
                )

    def _project_changed(self, project_id: str, before: State, after: State) -> None:
        old = before.goal_id if isinstance(before, Project) else None
        new = after.goal_id if isinstance(after, Project) else None
        # A goal's view lists its active projects: any change of a linked project
        # (archived, moved) may change it.
        for goal_id in (old, new):
            if goal_id is not None and (goal_entry := self._entries.get(goal_id)) is not None:
                goal_entry.view = None
        if old == new:
            return
        if old is not None:
            linked = self._links.get(old)
            if linked is not None:
                linked.discard(project_id)
                if not linked:
                    del self._links[old]
        if new is not None:
            self._links.setdefault(new, set()).add(project_id)

    def restore(
        self, entries: dict[str, Entry], conflicts: list[ConflictRecord], applied: int
    ) -> None:
        """Replace the whole content (used when loading a cache)."""
        self._entries = entries
        self._conflicts = conflicts
        self.applied = applied
        self._links = {}
        for project_id, entry in entries.items():
            state = entry.state
            if isinstance(state, Project) and state.goal_id is not None:
                self._links.setdefault(state.goal_id, set()).add(project_id)
        self._changed = set(entries)

    def track_positions(self) -> None:
        """Remember each conflict's effective-order position (call on an empty model)."""
        if self.applied or self._conflicts:
            raise ValueError("positions can only be tracked from an empty model")
        self._positions = []

    def set_conflict_positions(self, positions: list[tuple[int, int]]) -> None:
        """Attach the positions of the conflicts a restored model holds (one each)."""
        if len(positions) != len(self._conflicts):
            raise ValueError("one position per conflict is needed")
        self._positions = list(positions)

    def conflict_positions(self) -> list[tuple[int, int]]:
        """(0, global seq) or (1, commit seq) of each conflict, in the conflicts' order."""
        if self._positions is None:
            raise ValueError("conflict positions were not tracked")
        return list(self._positions)

    # -- raw access (cache, search, tests) -------------------------------------------

    def entries(self) -> Iterator[tuple[str, Entry]]:
        """Every (aggregate id, entry); entries must not be modified by the caller."""
        return iter(self._entries.items())

    def take_changes(self) -> set[str]:
        """Ids of aggregates changed since the last call (for incremental consumers)."""
        changed, self._changed = self._changed, set()
        return changed

    def goal_state(self, goal_id: str) -> Goal | None:
        """The goal's current state, if it exists."""
        entry = self._entries.get(goal_id)
        state = entry.state if entry is not None else None
        return state if isinstance(state, Goal) else None

    def project_state(self, project_id: str) -> Project | None:
        """The project's current state, if it exists."""
        entry = self._entries.get(project_id)
        state = entry.state if entry is not None else None
        return state if isinstance(state, Project) else None

    def state(self, aggregate_id: str) -> AggregateState | None:
        """Type, state and version of an aggregate (for the command side when up to date)."""
        entry = self._entries.get(aggregate_id)
        if entry is None:
            return None
        return AggregateState(entry.aggregate_type, entry.state, entry.version)

    def conflicts(self) -> list[ConflictRecord]:
        """The conflict log in effective order."""
        return list(self._conflicts)

    # -- GoalIndex (app/ports.py) -------------------------------------------------------

    def linked_projects(self, goal_id: str) -> list[tuple[str, str, bool]]:
        """(project_id, status, archived) of every project linked to the goal, by id."""
        result: list[tuple[str, str, bool]] = []
        for project_id in sorted(self._links.get(goal_id, ())):
            project = self.project_state(project_id)
            if project is not None:
                result.append((project_id, project.status.value, project.archived))
        return result

    def goals_in_list_order(self) -> list[tuple[Goal, Entry]]:
        """Every goal (archived ones too) with its entry, in list order.

        The cache stores goals this way, so that a model restored from it holds
        them in that order and its first list sorts already sorted goals.
        """
        goals = [
            (state, entry) for entry in self._entries.values()
            if isinstance(state := entry.state, Goal)
        ]
        goals.sort(key=_goal_order)
        return goals

    def linked_goal_ids(self) -> list[str]:
        """Ids of the goals at least one project links to (archived ones too), sorted.

        The only goals whose achievement their projects decide: a start-up
        reconciliation need not look at the others.
        """
        return sorted(goal_id for goal_id in self._links if self.goal_state(goal_id) is not None)

    def all_goal_ids(self) -> list[str]:
        """Ids of every goal (archived included), sorted."""
        return sorted(
            aggregate_id
            for aggregate_id, entry in self._entries.items()
            if isinstance(entry.state, Goal)
        )

    # -- queries ----------------------------------------------------------------------

    def _active_project_ids(self, goal_id: str) -> tuple[str, ...]:
        linked = self._links.get(goal_id)
        if not linked:
            return ()
        active: list[str] = []
        for project_id in linked:
            entry = self._entries.get(project_id)
            state = entry.state if entry is not None else None
            if isinstance(state, Project) and state.archived_at is None:
                active.append(project_id)
        active.sort()
        return tuple(active)

    def _goal_view(self, entry: Entry, goal: Goal) -> GoalView:
        view = entry.view
        if not isinstance(view, GoalView):
            view = entry.view = GoalView.of(goal, entry.version, self._active_project_ids(goal.id))
        return view

    def _project_view(self, entry: Entry, project: Project) -> ProjectView:
        view = entry.view
        if not isinstance(view, ProjectView):
            view = entry.view = ProjectView.of(project, entry.version)
        return view

    def goal(self, goal_id: str) -> GoalView | None:
        """One goal (archived ones too), or None."""
        entry = self._entries.get(goal_id)
        if entry is None or not isinstance(entry.state, Goal):
            return None
        return self._goal_view(entry, entry.state)

    def project(self, project_id: str) -> ProjectView | None:
        """One project (archived ones too), or None."""
        entry = self._entries.get(project_id)
        if entry is None or not isinstance(entry.state, Project):
            return None
        return self._project_view(entry, entry.state)

    def list_order_key(self, aggregate_id: str) -> tuple[object, ...]:
        """Where the aggregate sorts in `list_goals` / `list_projects` (goals first).

        Search uses it to order hits of equal relevance the way lists do, whatever
        order the model was filled in.
        """
        entry = self._entries.get(aggregate_id)
        state = entry.state if entry is not None else None
        if isinstance(state, Goal) and entry is not None:
            return (0, *_goal_order((state, entry)))
        if isinstance(state, Project) and entry is not None:
            return (1, *_project_order((state, entry)))
        return (2, aggregate_id)

    def list_goals(self, query: ListGoals) -> list[GoalView]:
        """Goals passing the filters, in list order (see the module docstring)."""
        chosen: list[tuple[Goal, Entry]] = []
        for entry in self._entries.values():
            goal = entry.state
            if not isinstance(goal, Goal):
                continue
            if goal.archived_at is not None and not query.include_archived:
                continue
            if query.slice is not None and goal.slice.value != query.slice:
                continue
            if query.priority is not None and goal.priority.value != query.priority:
                continue
            if query.month is not None and str(goal.target_month) != query.month:
                continue
            chosen.append((goal, entry))
        chosen.sort(key=_goal_order)
        return [self._goal_view(entry, goal) for goal, entry in chosen]

    def list_projects(self, query: ListProjects) -> list[ProjectView]:
        """Projects passing the filters, in list order (see the module docstring)."""
        chosen: list[tuple[Project, Entry]] = []
        for entry in self._entries.values():
            project = entry.state
            if not isinstance(project, Project):
                continue
            if project.archived_at is not None and not query.include_archived:
                continue
            if query.unlinked and project.goal_id is not None:
                continue
            if query.goal_id is not None and project.goal_id != query.goal_id:
                continue
            if query.status is not None and project.status.value != query.status:
                continue
            chosen.append((project, entry))
        chosen.sort(key=_project_order)
        return [self._project_view(entry, project) for project, entry in chosen]


# Plain ints, not Priority.rank / TargetMonth comparisons: sorting large lists calls
# the key once per goal but compares keys n·log n times, so the key must compare in C.
_PRIORITY_ORDER = {priority: -priority.rank for priority in Priority}


def _goal_order(item: tuple[Goal, Entry]) -> tuple[int, int, int, str, str]:
    goal = item[0]
    month = goal.target_month
    return (_PRIORITY_ORDER[goal.priority], month.year, month.month, goal.created_at, goal.id)


def _project_order(item: tuple[Project, Entry]) -> tuple[date, str, str, str]:
    project = item[0]
    return (project.target_date, project.name.casefold(), project.name, project.id)
