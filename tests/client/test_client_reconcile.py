"""Unlocking a store settles goals whose achieved flag disagrees with their projects.

The disagreements are written behind the session's back (a bare repository on the
client's log, as an older app version or an interrupted process could leave them),
so only the start-up reconciliation can notice them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from mo_local.app import commands as c
from mo_local.app.ports import EventMeta
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF
from mo_local.domain.events import (
    PROJECT,
    ProjectCreated,
    ProjectGoalAdded,
    ProjectStatusTransitioned,
)
from mo_local.domain.values import ProjectStatus
from mo_local.repository import EncryptedRepository

PASSPHRASE = "reconcile test passphrase"
AT = "2025-01-02T03:04:05.000000Z"


def base(client: Client, aggregate_id: str | None = None) -> c.CommandBase:
    return client.command_base(None, None, aggregate_id or client.new_id())


def goal(client: Client, summary: str) -> str:
    return client.execute(c.CreateGoal(**base(client), summary=summary, slice="work",
                                       priority="must", target_month="2027-05")).aggregate_id


def project(client: Client, goal_id: str) -> str:
    return client.execute(c.CreateProject(**base(client), name="Step", start_date="2027-01-01",
                                          target_date="2027-04-01",
                                          goal_id=goal_id)).aggregate_id


def achieved(client: Client, goal_id: str) -> bool:
    view = client.goal(goal_id)
    assert view is not None
    return view.achieved


def test_unlocking_settles_the_goals_that_disagree_and_only_those(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client, _ = Client.create(home, PASSPHRASE, MINIMUM_KDF)
    finished, unfinished, alone = goal(client, "Finished"), goal(client, "Unfinished"), goal(
        client, "Alone")
    plain = [goal(client, f"Plain {i}") for i in range(20)]  # no projects at all
    last_step = project(client, finished)
    done = project(client, unfinished)
    client.execute(c.TransitionProjectStatus(**base(client, done), status="completed"))
    client.execute(c.AchieveGoal(**base(client, alone)))  # by hand: no project decides it
    assert achieved(client, unfinished) and achieved(client, alone)
    assert not achieved(client, finished)

    # Behind the session's back: the last step completes (nobody achieves the goal),
    # and a new, open project joins the achieved goal (nobody unachieves it).
    bare = EncryptedRepository(client.log)
    meta = EventMeta(AT, "elsewhere")
    bare.append(PROJECT, last_step, 2,
                [ProjectStatusTransitioned(last_step, AT, ProjectStatus.COMPLETED)], meta)
    late = client.new_id()
    bare.append(PROJECT, late, 0, [
        ProjectCreated(late, AT, "Late step", date(2027, 1, 1), date(2027, 2, 1), ""),
        ProjectGoalAdded(late, AT, unfinished),
    ], meta)
    client.close()

    client = Client.open(home)
    try:
        client.unlock(PASSPHRASE)
        assert achieved(client, finished)
        assert not achieved(client, unfinished)
        assert achieved(client, alone)
        assert not any(achieved(client, goal_id) for goal_id in plain)
        settled = sum(1 for _ in client.store.read_commit_order())
    finally:
        client.close()

    # Settled for good: the next unlock writes nothing.
    client = Client.open(home)
    try:
        client.unlock(PASSPHRASE)
        assert sum(1 for _ in client.store.read_commit_order()) == settled
        assert achieved(client, finished) and not achieved(client, unfinished)
    finally:
        client.close()
