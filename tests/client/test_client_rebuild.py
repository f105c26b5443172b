"""Client.rebuild: one whole replay, never two (a store without a usable cache replays on open)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mo_local.app import commands as c
from mo_local.app.queries import ListGoals
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF
from mo_local.derived import cache

PASSPHRASE = "rebuild test passphrase"


def a_store_with_goals(home: Path, goals: int) -> None:
    client, _ = Client.create(home, PASSPHRASE, MINIMUM_KDF)
    for i in range(goals):
        created = client.execute(c.CreateGoal(
            **client.command_base(None, None, client.new_id()),
            summary=f"Goal {i}", slice="work", priority="must", target_month="2027-05"))
        client.execute(c.RefineGoal(
            **client.command_base(None, None, created.aggregate_id), summary=f"Goal {i}, refined"))
    client.close()


def reopened(home: Path) -> Client:
    client = Client.open(home)
    client.unlock(PASSPHRASE)
    return client


def test_rebuild_without_a_cache_replays_the_log_once(tmp_path: Path) -> None:
    a_store_with_goals(tmp_path, 5)
    client = Client.open(tmp_path)
    client.store.clear_derived()
    client.unlock(PASSPHRASE)
    assert client.rebuild() == 10
    assert client.log.opened == 10  # opening replayed it; rebuild did not do it again
    assert len(client.list_goals(ListGoals())) == 5
    assert client.rebuild() == 10  # an explicit second call does replay again
    assert client.log.opened == 20
    client.close()


def test_rebuild_with_a_valid_cache_still_replays_everything(tmp_path: Path) -> None:
    a_store_with_goals(tmp_path, 3)
    client = reopened(tmp_path)
    assert client.rebuild() == 6
    assert client.log.opened == 6  # the cache was used on open, then the log replayed
    assert [g.version for g in client.list_goals(ListGoals())] == [2, 2, 2]
    client.close()


def test_rebuild_on_a_fresh_session_does_not_load_the_cache_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_store_with_goals(tmp_path, 3)
    loads: list[object] = []
    real_load = cache.load

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(cache, "load", counting)
    client = reopened(tmp_path)
    assert client.rebuild() == 6
    assert loads == [] and client.log.opened == 6
    assert [g.summary for g in client.list_goals(ListGoals())] == [
        "Goal 0, refined", "Goal 1, refined", "Goal 2, refined"]
    client.close()
    with reopened(tmp_path) as again:  # the rebuild saved a cache: opening decrypts nothing
        assert len(again.list_goals(ListGoals())) == 3
        assert again.log.opened == 0
