"""After a command the read model folds what the command wrote, without reading it back.

The session follows the events its repository just sealed (Projector.follow) only
when the model had folded every event before the write; otherwise, and whenever a
command fails, it catches up from the log. Whichever way it went, the model must
be exactly what a replay of the log gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mo_local.app import commands as c
from mo_local.app.queries import ListGoals, ListProjects
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF
from mo_local.derived.projector import Projector
from mo_local.domain.errors import ConcurrencyError, NotFound
from mo_local.domain.events import GOAL, PROJECT
from mo_local.repository import EncryptedRepository
from mo_local.store.errors import StoreError
from mo_local.store.records import NewEvent

PASSPHRASE = "follow test passphrase"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    created, _ = Client.create(tmp_path / "home", PASSPHRASE, MINIMUM_KDF)
    yield created
    created.close()


def base(client: Client, aggregate_id: str | None = None) -> c.CommandBase:
    return client.command_base(None, None, aggregate_id or client.new_id())


def create_goal(client: Client, summary: str) -> str:
    return client.execute(c.CreateGoal(**base(client), summary=summary, slice="work",
                                       priority="must", target_month="2027-05")).aggregate_id


def create_project(client: Client, name: str, goal_id: str | None = None) -> str:
    return client.execute(c.CreateProject(**base(client), name=name, start_date="2027-01-01",
                                          target_date="2027-04-01",
                                          goal_id=goal_id)).aggregate_id


def views(client: Client) -> tuple[object, ...]:
    """What the client's read model shows, archived aggregates included."""
    return (
        sorted(client.list_goals(ListGoals(include_archived=True)), key=lambda g: g.id),
        sorted(client.list_projects(ListProjects(include_archived=True)), key=lambda p: p.id),
        client.conflicts(),
    )


def replayed(client: Client) -> tuple[object, ...]:
    """The same views from a projector that replays the whole log."""
    fresh = Projector(client.store, client.log, client.vault, client.store_id, parallel_from=None)
    fresh.rebuild()
    model = fresh.model
    try:
        return (
            sorted(model.list_goals(ListGoals(include_archived=True)), key=lambda g: g.id),
            sorted(model.list_projects(ListProjects(include_archived=True)), key=lambda p: p.id),
            [conflict.to_json() for conflict in model.conflicts()],
        )
    finally:
        fresh.close()


def assert_model_matches_log(client: Client) -> None:
    assert views(client) == replayed(client)
    assert client.session.projector.cursor == client.store.effective_head()
    assert client.session.projector.covers_all()


def test_commands_fold_what_they_wrote_without_decrypting_it_again(client: Client) -> None:
    session = client.session  # opened (and caught up) before counting
    opened, rebuilds = client.log.opened, session.projector.rebuilds
    goals = [create_goal(client, f"Goal {i}") for i in range(4)]
    for i, goal_id in enumerate(goals):
        client.execute(c.RefineGoal(**base(client, goal_id), summary=f"Goal {i}, refined"))
    client.execute(c.EditGoal(**base(client, goals[0]), summary="Edited", slice="health",
                              priority="should"))
    project = create_project(client, "Plan", goals[1])
    client.execute(c.AddMilestone(**base(client, project), name="Half way",
                                  target_date="2027-02-01"))
    client.execute(c.ArchiveGoal(**base(client, goals[3])))
    # Every event came from the plaintext the commands sealed: none was read back.
    assert client.log.opened == opened
    assert session.projector.rebuilds == rebuilds
    assert client.goal(goals[0]).summary == "Edited"
    assert client.goal(goals[2]).summary == "Goal 2, refined"
    assert_model_matches_log(client)


def test_goal_achievement_reacts_on_the_followed_model(client: Client) -> None:
    goal = create_goal(client, "Ship it")
    first = create_project(client, "First", goal)
    second = create_project(client, "Second", goal)
    opened = client.log.opened
    client.execute(c.TransitionProjectStatus(**base(client, first), status="completed"))
    assert not client.goal(goal).achieved  # the second project is still open
    client.execute(c.TransitionProjectStatus(**base(client, second), status="completed"))
    assert client.goal(goal).achieved  # the process manager saw both completions
    client.execute(c.TransitionProjectStatus(**base(client, second), status="in_progress"))
    assert not client.goal(goal).achieved
    client.execute(c.UnlinkProject(**base(client, second)))
    assert client.goal(goal).achieved  # only the completed project is linked now
    assert client.log.opened == opened
    assert_model_matches_log(client)


def test_a_command_that_fails_after_its_append_leaves_the_model_as_it_was(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    goal = create_goal(client, "Stays")
    before = views(client)
    cursor = client.session.projector.cursor
    count = client.store.count_events()

    def broken_seal(*_args: object) -> bytes:
        raise RuntimeError("disk on fire")

    # The idempotency record is written after the events, in the same transaction:
    # failing there rolls the events back although the repository recorded them.
    monkeypatch.setattr(client.session.repository, "_seal_result", broken_seal)
    with pytest.raises(RuntimeError):
        client.execute(c.RefineGoal(**client.command_base(None, "retry-key", goal),
                                    summary="Never happened"))
    monkeypatch.undo()
    assert client.store.count_events() == count
    assert views(client) == before
    assert client.session.projector.cursor == cursor
    assert client.session.repository.take_written() == []
    # The next command still lands in the model, and the model still matches the log.
    client.execute(c.RefineGoal(**base(client, goal), summary="Happened"))
    assert client.goal(goal).summary == "Happened"
    assert_model_matches_log(client)


def test_a_commit_that_fails_leaves_the_model_as_it_was(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events were appended and recorded, then COMMIT itself failed."""
    goal = create_goal(client, "Stays")
    before = views(client)
    cursor = client.session.projector.cursor
    count = client.store.count_events()
    repository = client.session.repository
    append = repository.append

    def append_then_break_the_commit(*args: Any, **kwargs: Any) -> int:
        version = append(*args, **kwargs)
        # A foreign key checked only at COMMIT, violated inside the command's
        # transaction: SQLite refuses the COMMIT and the transaction rolls back.
        conn = client.store._conn
        assert conn is not None
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute("INSERT INTO sync_map (global_seq, event_id) VALUES (999999, 'none')")
        return version

    monkeypatch.setattr(repository, "append", append_then_break_the_commit)
    with pytest.raises(StoreError):
        client.execute(c.RefineGoal(**base(client, goal), summary="Never committed"))
    monkeypatch.undo()
    assert client.store.count_events() == count
    assert not client.store.in_transaction
    assert repository.take_written() == []
    assert views(client) == before
    assert client.session.projector.cursor == cursor
    client.execute(c.RefineGoal(**base(client, goal), summary="Committed"))
    assert client.goal(goal).summary == "Committed"
    assert_model_matches_log(client)


def test_a_stale_command_changes_nothing_and_the_next_one_follows(client: Client) -> None:
    goal = create_goal(client, "Versioned")
    before = views(client)
    with pytest.raises(ConcurrencyError):
        client.execute(c.RefineGoal(**client.command_base(5, None, goal), summary="Stale"))
    assert views(client) == before
    opened = client.log.opened
    client.execute(c.RefineGoal(**client.command_base(1, None, goal), summary="Fresh"))
    assert client.goal(goal).summary == "Fresh"
    assert client.log.opened == opened
    assert_model_matches_log(client)


def test_writes_that_bypass_the_session_make_it_catch_up_instead(tmp_path: Path) -> None:
    """Records written behind the session's back (as a sync pull does) are not missed.

    The session is not told (no refresh): it must notice from the store that its
    model no longer covers every event, and catch up rather than follow.
    """
    ours, _ = Client.create(tmp_path / "ours", PASSPHRASE, MINIMUM_KDF)
    theirs = Client.create_from_header(tmp_path / "theirs", ours.vault_header, PASSPHRASE)
    try:
        mine = create_goal(ours, "Mine")
        remote = create_goal(theirs, "From the other device")
        theirs.execute(c.RefineGoal(**base(theirs, remote), summary="From the other device, v2"))
        rows = list(theirs.store.read_commit_order())
        for seq, row in enumerate(rows, start=1):
            ours.store.insert_remote(
                NewEvent(row.event_id, row.kind, row.aggregate_type, row.aggregate_id,
                         row.version, row.key_id, row.record),
                seq,
            )
        opened = ours.log.opened
        ours.execute(c.RefineGoal(**base(ours, mine), summary="Mine, refined"))
        # The model no longer covered every event, so the command read its goal from
        # the log (1 event); the pulled events sort before ours (synced first), so the
        # session then rebuilt from the log (INV-011: 4 events) instead of following.
        assert ours.log.opened - opened == 1 + 4
        assert ours.goal(remote).summary == "From the other device, v2"
        assert ours.goal(mine).summary == "Mine, refined"
        assert_model_matches_log(ours)
        # Caught up again: the next command takes its goal from the model and follows,
        # decrypting nothing.
        opened = ours.log.opened
        ours.execute(c.RefineGoal(**base(ours, mine), summary="Mine, edited again"))
        assert ours.log.opened == opened
        assert ours.goal(mine).summary == "Mine, edited again"
        assert_model_matches_log(ours)
    finally:
        theirs.close()
        ours.close()


def test_a_command_inside_an_open_transaction_catches_up_from_the_log(client: Client) -> None:
    goal = create_goal(client, "Outer")
    with client.store.transaction():
        client.execute(c.RefineGoal(**base(client, goal), summary="Inside"))
        assert client.goal(goal).summary == "Inside"
    assert_model_matches_log(client)
    opened = client.log.opened
    client.execute(c.RefineGoal(**base(client, goal), summary="After"))
    assert client.log.opened == opened
    assert_model_matches_log(client)


def test_an_idempotent_replay_writes_nothing_and_keeps_following(client: Client) -> None:
    goal = create_goal(client, "Once")
    command = c.RefineGoal(**client.command_base(None, "same-key", goal), summary="Twice?")
    first = client.execute(command)
    count = client.store.count_events()
    assert client.execute(command) == first
    assert client.store.count_events() == count
    opened = client.log.opened
    client.execute(c.RefineGoal(**base(client, goal), summary="Then this"))
    assert client.log.opened == opened
    assert_model_matches_log(client)


def test_an_edit_is_one_short_transaction_and_nothing_is_read_back(client: Client) -> None:
    goal = create_goal(client, "Counted")
    client.execute(c.RefineGoal(**base(client, goal), summary="Warm"))  # decoded and followed
    conn = client.store._conn
    assert conn is not None
    seen: list[str] = []

    def trace(sql: str) -> None:
        if not seen or seen[-1] != sql:  # a statement firing a trigger is reported again
            seen.append(sql)

    conn.set_trace_callback(trace)
    try:
        client.execute(c.RefineGoal(**base(client, goal), summary="Traced"))
    finally:
        conn.set_trace_callback(None)
    verbs = [sql.split()[0].upper() for sql in seen]
    # The version check and the insert, in one transaction without savepoints; the
    # duplicate-id check is the UNIQUE constraint, and the model follows in memory.
    assert verbs == ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    assert client.goal(goal).summary == "Traced"


def test_commands_take_their_aggregate_from_a_current_model(tmp_path: Path) -> None:
    """Opened from its cache, a client decides on the model's states: nothing decrypted.

    The states are the log's fold (a repository without the model agrees), the
    versions are the log's (a stale one is refused), and a project id given as a
    goal is unknown, exactly as when the log is read.
    """
    home = tmp_path / "home"
    client, _ = Client.create(home, PASSPHRASE, MINIMUM_KDF)
    goal = create_goal(client, "Run")
    project = create_project(client, "Shoes", goal)
    for summary in ("Run far", "Run farther"):
        client.execute(c.RefineGoal(**base(client, goal), summary=summary))
    client.close()

    client = Client.open(home)
    try:
        client.unlock(PASSPHRASE)
        assert client.log.opened == 0  # the cache had it all
        with pytest.raises(ConcurrencyError):
            client.execute(c.RefineGoal(**client.command_base(2, None, goal), summary="Stale"))
        client.execute(c.RefineGoal(**client.command_base(3, None, goal), summary="Run on"))
        with pytest.raises(NotFound):
            client.execute(c.RefineGoal(**base(client, project), summary="Not a goal"))
        client.execute(c.TransitionProjectStatus(**base(client, project), status="completed"))
        assert client.log.opened == 0
        assert client.goal(goal).summary == "Run on"
        assert client.goal(goal).achieved  # its one linked project is complete
        fresh = EncryptedRepository(client.log)  # folds the log, no model
        model = client.session.projector.model
        for aggregate_type, aggregate_id in ((GOAL, goal), (PROJECT, project)):
            known = model.state(aggregate_id)
            assert known is not None
            assert fresh.load_state(aggregate_type, aggregate_id) == (known.state, known.version)
        assert_model_matches_log(client)
    finally:
        client.close()
