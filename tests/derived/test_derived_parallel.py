"""Parallel rebuild (derived/parallel.py): two processes fold shares of the aggregates.

The merged result must be exactly what one sequential replay gives — states,
versions, conflicts in effective order, cursor — on a log whose effective order
differs from its commit order, whichever way the aggregates are split; anything
that goes wrong must leave the caller replaying on one core, with the same errors.
"""

from __future__ import annotations

import gc
import marshal
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
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
from mo_local.store.records import StoredEvent

pytestmark = pytest.mark.skipif(not parallel.available(), reason="needs fork and two cores")

Split = Callable[[str], bool]


def even_ids(aggregate_id: str) -> bool:
    """A split giving the child about half the aggregates (UUIDs end in a hex digit)."""
    return aggregate_id[-1] in "02468ace"


SPLITS: dict[str, Split | None] = {
    "by speed": None,  # the default: whichever side has time
    "half": even_ids,
    "all to the child": lambda _: True,
    "all to the parent": lambda _: False,
}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def busy_log(env: Env, goals: int = 24) -> None:
    """Goals and linked projects, with conflicts, partly synced.

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
    with env.store.transaction():
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
    assert both.model.conflicts() == sequential.model.conflicts()
    # Derived indexes are rebuilt from the merged states: links, views, search.
    for goal_id, _ in both.model.entries():
        assert both.model.linked_projects(goal_id) == sequential.model.linked_projects(goal_id)
    assert both.search("Goal 1") == sequential.search("Goal 1")


@pytest.mark.parametrize("split", SPLITS.values(), ids=SPLITS.keys())
def test_every_split_gives_the_sequential_result(env: Env, split: Split | None) -> None:
    busy_log(env)
    sequential = rebuilt(env, parallel_from=None)
    folded = parallel.rebuild_in_two(env.store, env.log, split=split)
    assert folded is not None
    assert folded.applied == sequential.model.applied
    assert folded.cursor == sequential.cursor
    assert model_state(folded.model) == model_state(sequential.model)


def test_conflicts_from_both_sides_merge_in_effective_order(env: Env) -> None:
    busy_log(env)
    sequential = rebuilt(env, parallel_from=None)
    conflicted = sorted({c.aggregate_id for c in sequential.model.conflicts()})
    assert len(conflicted) >= 4
    to_child = set(conflicted[::2])  # every other conflicted aggregate to each side

    def split(aggregate_id: str) -> bool:
        return aggregate_id in to_child or (
            aggregate_id not in conflicted and even_ids(aggregate_id)
        )

    folded = parallel.rebuild_in_two(env.store, env.log, split=split)
    assert folded is not None
    assert folded.model.conflicts() == sequential.model.conflicts()
    assert {c.aggregate_id in to_child for c in folded.model.conflicts()} == {False, True}
    assert model_state(folded.model) == model_state(sequential.model)


def test_more_rows_than_the_pipe_holds_are_streamed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows beyond the pipe's buffer and the parent's queue: partial writes and waits."""
    busy_log(env, goals=150)
    sealed = sum(len(row.record) for row in env.store.read_commit_order())
    assert sealed > 2 * parallel._PIPE_BYTES
    monkeypatch.setattr(parallel, "_MAX_QUEUED_BYTES", 20_000)
    sequential = rebuilt(env, parallel_from=None)
    for split in (SPLITS["all to the child"], even_ids, None):
        folded = parallel.rebuild_in_two(env.store, env.log, split=split)
        assert folded is not None
        assert model_state(folded.model) == model_state(sequential.model)
        assert folded.cursor == sequential.cursor


def test_the_router_keeps_each_aggregate_on_one_side_in_order(env: Env) -> None:
    busy_log(env)
    rows = list(env.store.read_effective_order())

    class Capture:
        def __init__(self) -> None:
            self.messages: list[bytes] = []

        def send(self, message: bytes) -> None:
            self.messages.append(message)

    capture = Capture()
    asked: list[str] = []

    def to_child(aggregate_id: str) -> bool:
        asked.append(aggregate_id)
        return even_ids(aggregate_id)

    router = parallel._Router(rows, capture, to_child)  # type: ignore[arg-type]
    kept = list(router)
    router.flush()
    sent = [StoredEvent._make(row) for m in capture.messages for row in marshal.loads(m)]
    # Each aggregate decided once, at its first row; each side keeps effective order.
    assert sorted(asked) == sorted({row.aggregate_id for row in rows})
    assert kept == [row for row in rows if not even_ids(row.aggregate_id)]
    assert sent == [row for row in rows if even_ids(row.aggregate_id)]
    assert router.rows == len(rows) and router.sent == len(sent)
    assert all(len(marshal.loads(m)) <= parallel._BATCH_ROWS for m in capture.messages)


def test_the_child_is_given_new_aggregates_only_while_it_keeps_up() -> None:
    read_fd, write_fd = os.pipe()
    sender = parallel._Sender(write_fd, deadline=float("inf"))
    try:
        sender.start()
        assert sender.keeping_up()
        chunk = b"x" * 50_000
        while sender.keeping_up():  # nobody reads: the pipe fills, then the queue
            sender.send(chunk)
        assert not sender.keeping_up()
        with open(read_fd, "rb", closefd=False) as pipe:
            while not sender.keeping_up():  # the child catches up
                pipe.read1(1 << 16)
    finally:
        sender.close()
        os.close(read_fd)


def test_rebuild_in_two_reports_what_it_did(env: Env) -> None:
    busy_log(env, goals=6)
    folded = parallel.rebuild_in_two(env.store, env.log)
    assert folded is not None
    sequential = rebuilt(env, parallel_from=None)
    assert folded.applied == sequential.model.applied
    assert folded.cursor == sequential.cursor
    assert model_state(folded.model) == model_state(sequential.model)


def test_the_cycle_collector_is_left_as_it_was(env: Env) -> None:
    busy_log(env, goals=2)
    assert gc.isenabled()
    assert parallel.rebuild_in_two(env.store, env.log) is not None
    assert gc.isenabled()
    gc.disable()
    try:
        assert parallel.rebuild_in_two(env.store, env.log, deadline_s=0.0) is None
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_child_that_misses_its_deadline_means_fall_back(env: Env) -> None:
    busy_log(env, goals=4)
    assert parallel.rebuild_in_two(env.store, env.log, deadline_s=0.0) is None


def test_a_child_that_fails_means_fall_back(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    busy_log(env, goals=6)
    sequential = rebuilt(env, parallel_from=None)

    def broken(_model: object) -> bytes:
        raise RuntimeError("the child cannot answer")

    # Only the child encodes a snapshot during rebuild_in_two.
    monkeypatch.setattr(parallel, "encode_snapshot", broken)
    assert parallel.rebuild_in_two(env.store, env.log) is None
    both = rebuilt(env, parallel_from=1)  # the projector falls back to one core
    assert model_state(both.model) == model_state(sequential.model)


def test_a_child_that_dies_while_rows_stream_means_fall_back(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy_log(env, goals=150)

    class Dying(parallel._Received):
        def __iter__(self) -> Iterator[StoredEvent]:
            for count, row in enumerate(super().__iter__()):
                if count == 10:
                    os._exit(3)
                yield row

    monkeypatch.setattr(parallel, "_Received", Dying)
    assert parallel.rebuild_in_two(env.store, env.log, split=SPLITS["all to the child"]) is None


@pytest.mark.parametrize("child_side", [True, False], ids=["child's row", "parent's row"])
def test_a_tampered_event_in_either_half_fails_like_the_sequential_replay(
    env: Env, child_side: bool
) -> None:
    busy_log(env, goals=6)
    row = next(r for r in env.store.read_effective_order()
               if r.kind == "event" and even_ids(r.aggregate_id) == child_side)
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
    assert parallel.rebuild_in_two(env.store, env.log, split=even_ids) is None
    assert parallel.rebuild_in_two(env.store, env.log) is None
    with pytest.raises(EventLogError):
        rebuilt(env, parallel_from=1)


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


def test_logs_above_the_cap_rebuild_on_one_core(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy_log(env, goals=2)
    monkeypatch.setattr(parallel, "MAX_EVENTS", env.store.count_events() - 1)
    calls: list[int] = []
    monkeypatch.setattr(parallel, "rebuild_in_two", lambda *a, **k: calls.append(1))
    projector = Projector(env.store, env.log, env.vault, env.store_id, parallel_from=1)
    assert projector.rebuild() > 0
    assert calls == []
