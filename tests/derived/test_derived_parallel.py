"""Parallel rebuild (derived/parallel.py): two processes fold halves of the aggregates.

The merged result must be exactly what one sequential replay gives — states,
versions, conflicts in effective order, cursor — on a log whose effective order
differs from its commit order; anything that goes wrong must leave the caller
replaying on one core, with the same errors.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from derived_helpers import (
    AT,
    Env,
    goal_created,
    linked,
    make_env,
    milestone,
    model_state,
    project_created,
)

from mo_local.derived import parallel
from mo_local.derived.projector import Projector
from mo_local.domain.events import (
    DomainEvent,
    GoalArchived,
    GoalRefined,
    ProjectArchived,
    ProjectRenamed,
)
from mo_local.eventlog import EventLogError
from mo_local.store.records import stored_event

pytestmark = pytest.mark.skipif(not parallel.available(), reason="needs fork and two cores")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def busy_log(env: Env, goals: int = 24) -> None:
    """Goals and linked projects across both partitions, with conflicts, partly synced.

    Conflicts come from edits of archived goals; about half the rows get global
    sequences in an order unlike their commit order, so effective order (synced
    by global seq, then pending by commit seq) interleaves aggregates differently.
    """
    events: list[DomainEvent] = []
    for i in range(goals):
        goal = goal_created(f"Goal {i}")
        project = project_created(f"Project {i}")
        events += [goal, project, linked(project.aggregate_id, goal.aggregate_id)]
        events.append(milestone(project.aggregate_id, f"Milestone {i}", project.target_date))
        if i % 3 == 0:
            events += [GoalArchived(goal.aggregate_id, AT),
                       GoalRefined(goal.aggregate_id, AT, f"Late edit {i}")]
        if i % 4 == 1:
            events += [ProjectArchived(project.aggregate_id, AT),
                       ProjectRenamed(project.aggregate_id, AT, f"Late name {i}")]
    env.append(*events)
    rows = list(env.store.read_commit_order())
    synced = rows[: len(rows) // 2]
    # Global order: odd positions first, then even ones (each aggregate's key record
    # stays before its events because both halves keep commit order).
    order = synced[1::2] + synced[0::2]
    for seq, row in enumerate(order, start=1):
        env.store.mark_synced(row.event_id, seq)


def rebuilt(env: Env, *, parallel_from: int | None) -> Projector:
    projector = Projector(env.store, env.log, env.vault, env.store_id,
                          parallel_from=parallel_from)
    projector.rebuild()
    return projector


def test_parallel_rebuild_equals_the_sequential_one(env: Env) -> None:
    busy_log(env)
    sequential = rebuilt(env, parallel_from=None)
    opened_before = env.log.opened
    both = rebuilt(env, parallel_from=1)
    assert env.log.opened - opened_before == sequential.model.applied  # child's count included
    assert model_state(both.model) == model_state(sequential.model)
    assert both.cursor == sequential.cursor == env.store.effective_head()
    conflicts = both.model.conflicts()
    assert conflicts == sequential.model.conflicts()
    # Conflicts from both halves, interleaved back into one effective order.
    halves = {"0123456789abcdef".index(c.aggregate_id[-1]) + 1 >= 8 for c in conflicts}
    assert len(conflicts) >= 5 and halves == {False, True}
    # Derived indexes are rebuilt from the merged states: links, views, search.
    for goal_id, _ in both.model.entries():
        assert both.model.linked_projects(goal_id) == sequential.model.linked_projects(goal_id)
    assert both.search("Goal 1") == sequential.search("Goal 1")


def test_both_partitions_get_work_and_together_cover_the_log(env: Env) -> None:
    busy_log(env)
    halves = [list(env.store.read_effective_buckets(low, high)) for low, high in ((0, 8), (8, 17))]
    assert all(len(half) > 10 for half in halves)
    assert sorted(r.event_id for half in halves for r in half) == sorted(
        r.event_id for r in env.store.read_commit_order()
    )
    # The unchecked read the parent does before the fork gives the same rows.
    assert [stored_event(row) for row in env.store.effective_bucket_rows(8, 17)] == halves[1]
    whole = [r.event_id for r in env.store.read_effective_order()]
    for half in halves:  # each half keeps the effective order
        ids = [r.event_id for r in half]
        assert sorted(ids, key=whole.index) == ids


def test_rebuild_in_two_reports_what_it_did(env: Env) -> None:
    busy_log(env, goals=6)
    folded = parallel.rebuild_in_two(env.store, env.log)
    assert folded is not None
    sequential = rebuilt(env, parallel_from=None)
    assert folded.applied == sequential.model.applied
    assert folded.cursor == sequential.cursor
    assert model_state(folded.model) == model_state(sequential.model)


def test_a_child_that_misses_its_deadline_means_fall_back(env: Env) -> None:
    busy_log(env, goals=4)
    assert parallel.rebuild_in_two(env.store, env.log, deadline_s=0.0) is None


def test_a_tampered_event_in_either_half_fails_like_the_sequential_replay(env: Env) -> None:
    busy_log(env, goals=6)
    for low, high in ((0, 8), (8, 17)):
        row = next(r for r in env.store.read_effective_buckets(low, high) if r.kind == "event")
        damaged = bytearray(row.record)
        damaged[-10] ^= 0x01
        env.store.close()
        conn = sqlite3.connect(env.path, isolation_level=None)
        try:
            conn.execute("DROP TRIGGER IF EXISTS events_synced_no_update")
            conn.execute("UPDATE events SET record = ? WHERE event_id = ?",
                         (bytes(damaged), row.event_id))
        finally:
            conn.close()
        env.reopen()
        assert parallel.rebuild_in_two(env.store, env.log) is None
        with pytest.raises(EventLogError):
            rebuilt(env, parallel_from=1)
        env.store.close()
        conn = sqlite3.connect(env.path, isolation_level=None)
        try:
            conn.execute("UPDATE events SET record = ? WHERE event_id = ?",
                         (row.record, row.event_id))
        finally:
            conn.close()
        env.reopen()


def test_no_parallel_rebuild_while_another_thread_runs() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert not parallel.available()
    finally:
        stop.set()
        worker.join()
    assert parallel.available()


def test_small_logs_rebuild_on_one_core(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    busy_log(env, goals=2)
    assert env.store.count_events() < parallel.MIN_EVENTS
    calls: list[int] = []
    monkeypatch.setattr(parallel, "rebuild_in_two", lambda *a, **k: calls.append(1))
    projector = Projector(env.store, env.log, env.vault, env.store_id)  # default threshold
    assert projector.rebuild() > 0
    assert calls == []


def test_logs_above_the_memory_cap_rebuild_on_one_core(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy_log(env, goals=2)
    monkeypatch.setattr(parallel, "MAX_EVENTS", env.store.count_events() - 1)
    calls: list[int] = []
    monkeypatch.setattr(parallel, "rebuild_in_two", lambda *a, **k: calls.append(1))
    projector = Projector(env.store, env.log, env.vault, env.store_id, parallel_from=1)
    assert projector.rebuild() > 0
    assert calls == []
