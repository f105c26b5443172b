"""Property: any effective order of the same events folds totally, as the command side does.

The read model is fed decrypted events directly (the store and crypto paths are
covered by the other derived tests); what varies here is the order.
"""

from __future__ import annotations

from datetime import date

from derived_helpers import AT, envelope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mo_local.app.queries import ListGoals, ListProjects
from mo_local.derived.readmodel import ReadModel
from mo_local.derived.search import SearchIndex
from mo_local.derived.snapshot import decode_snapshot, encode_snapshot
from mo_local.domain import events as ev
from mo_local.domain.fold import fold
from mo_local.domain.project import Project
from mo_local.domain.values import Priority, ProjectStatus, Slice, TargetMonth
from mo_local.eventlog import Envelope, OpenedEvent
from mo_local.store.records import StoredEvent

G1 = "11111111-1111-4111-8111-111111111111"
G2 = "22222222-2222-4222-8222-222222222222"
P1 = "33333333-3333-4333-8333-333333333333"
P2 = "44444444-4444-4444-8444-444444444444"
M1 = "55555555-5555-4555-8555-555555555555"

POOL: list[ev.DomainEvent] = [
    ev.GoalCreated(G1, AT, "Run a marathon", Slice.HEALTH, Priority.MUST, TargetMonth(2025, 6)),
    ev.GoalRefined(G1, AT, "Run two marathons"),
    ev.GoalRefined(G1, AT, "Run two marathons"),
    ev.GoalRecategorized(G1, AT, Slice.LEISURE),
    ev.GoalRescheduled(G1, AT, TargetMonth(2026, 1)),
    ev.GoalPrioritized(G1, AT, Priority.MAYBE),
    ev.GoalAchieved(G1, AT),
    ev.GoalAchieved(G1, AT),
    ev.GoalUnachieved(G1, AT),
    ev.GoalArchived(G1, AT),
    ev.GoalArchived(G1, AT),
    ev.GoalCreated(G2, AT, "Read more", Slice.LEARNING, Priority.SHOULD, TargetMonth(2025, 9)),
    ev.GoalCreated(
        G2, AT, "Read more again", Slice.LEARNING, Priority.SHOULD, TargetMonth(2025, 9)
    ),
    ev.GoalArchived(G2, AT),
    ev.ProjectCreated(P1, AT, "Training plan", date(2025, 3, 1), date(2025, 6, 30), "weekly"),
    ev.ProjectStatusTransitioned(P1, AT, ProjectStatus.COMPLETED),
    ev.ProjectRenamed(P1, AT, "Training"),
    ev.ProjectDescribed(P1, AT, "daily"),
    ev.ProjectGoalAdded(P1, AT, G1),
    ev.ProjectGoalRemoved(P1, AT, G1),
    ev.ProjectGoalAdded(P1, AT, G2),
    ev.ProjectMilestoneAdded(P1, AT, M1, "Half marathon", date(2025, 4, 15)),
    ev.ProjectMilestoneRenamed(P1, AT, M1, "10k"),
    ev.ProjectMilestoneRescheduled(P1, AT, M1, date(2025, 5, 1)),
    ev.ProjectMilestoneArchived(P1, AT, M1),
    ev.ProjectRescheduled(P1, AT, date(2025, 4, 20), date(2025, 7, 31)),
    ev.ProjectArchived(P1, AT),
    ev.ProjectCreated(P2, AT, "Library card", date(2025, 1, 1), date(2025, 1, 31), ""),
    ev.ProjectGoalAdded(P2, AT, G2),
    ev.ProjectArchived(P2, AT),
]
TYPES = {G1: ev.GOAL, G2: ev.GOAL, P1: ev.PROJECT, P2: ev.PROJECT}
UNREADABLE = Envelope("GoalTeleported", 1, {"aggregate_id": G1, "at": AT}, AT, "t", "d")

Item = tuple[int, ev.DomainEvent | None]  # (index, event); None = the unreadable event
ITEMS: list[Item] = [*enumerate(POOL), (len(POOL), None)]


def opened(index: int, event: ev.DomainEvent | None) -> OpenedEvent:
    aggregate_id = event.aggregate_id if event is not None else G1
    stored = StoredEvent(
        index + 1, None, f"event-{index}", "event", TYPES[aggregate_id], aggregate_id, 1, "key", b""
    )
    return OpenedEvent(stored, envelope(event) if event is not None else UNREADABLE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(ITEMS))
def test_any_effective_order_folds_like_the_command_side(order: list[Item]) -> None:
    model = ReadModel()
    for index, event in order:
        model.apply(opened(index, event))  # never raises

    expected_conflicts = 0
    for aggregate_id, aggregate_type in TYPES.items():
        mine = [e for _, e in order if e is not None and e.aggregate_id == aggregate_id]
        state, skips = fold(aggregate_type, mine)
        got = model.state(aggregate_id)
        assert got is not None
        assert got.state == state
        assert got.aggregate_type == aggregate_type
        unreadable = 1 if aggregate_id == G1 else 0
        assert got.version == len(mine) + unreadable
        expected_conflicts += sum(skip.is_conflict for skip in skips) + unreadable
    assert len(model.conflicts()) == expected_conflicts

    # The goal index agrees with the project states.
    for goal_id in (G1, G2):
        linked = {
            pid
            for pid in (P1, P2)
            if isinstance(p := model.project_state(pid), Project) and p.goal_id == goal_id
        }
        assert {pid for pid, _status, _archived in model.linked_projects(goal_id)} == linked

    # Queries, search and the cache codec are total on every reachable model.
    model.list_goals(ListGoals(include_archived=True))
    model.list_projects(ListProjects(include_archived=True))
    search = SearchIndex(model)
    search.search("marathon")
    search.search("ra")
    search.close()
    assert encode_snapshot(decode_snapshot(encode_snapshot(model))) == encode_snapshot(model)
