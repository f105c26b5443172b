"""The replay path (log → projector) on a real store whose file was tampered with.

Replays open rows with the fast in-place split and cached AAD pieces; these tests
show that a database edited behind the app's back — a routing column changed, a
record moved to another row, a byte of a ciphertext flipped — is still refused
(INV-013), and that the projector's cursor covers exactly what it applied.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from derived_helpers import AT, Env, goal_created, make_env

from mo_local.domain.events import GoalRefined
from mo_local.eventlog import Envelope, EventLogError
from mo_local.store.records import Cursor

CANARY = "CANARY-replay-7c1d"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    device = make_env(tmp_path)
    yield device
    device.close()


def two_goals(env: Env) -> tuple[str, str]:
    first, second = goal_created("First"), goal_created("Second")
    env.append(first, GoalRefined(first.aggregate_id, AT, "First, refined"))
    env.append(second, GoalRefined(second.aggregate_id, AT, "Second, refined"))
    return first.aggregate_id, second.aggregate_id


def tamper(env: Env, *statements: str) -> None:
    """Edit the database file directly, as someone with the file (not the keys) could."""
    env.store.close()
    conn = sqlite3.connect(env.path, isolation_level=None)
    try:
        # The triggers guard against bugs, not attackers: an attacker drops them.
        conn.execute("DROP TRIGGER IF EXISTS events_identity_fixed")
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()
    env.reopen()


def refused_on_replay(env: Env) -> None:
    with pytest.raises(EventLogError):
        list(env.log.read_effective())
    with pytest.raises(EventLogError):
        env.projector().rebuild()


def test_untampered_store_replays(env: Env) -> None:
    two_goals(env)
    opened = list(env.log.read_effective())
    assert [o.envelope.event_type for o in opened] == [
        "GoalCreated", "GoalRefined", "GoalCreated", "GoalRefined"
    ]
    assert env.log.opened == 4


@pytest.mark.parametrize(
    "change",
    [
        "version = 3",
        "aggregate_type = 'project'",
        "aggregate_id = '00000000-0000-4000-8000-000000000009'",
        "event_id = '00000000-0000-4000-8000-00000000000a'",
    ],
    ids=["version", "aggregate_type", "aggregate_id", "event_id"],
)
def test_inv013_a_changed_routing_column_fails_on_replay(env: Env, change: str) -> None:
    """INV-013: each routing column a replay reads is bound by the payload AAD."""
    first, _ = two_goals(env)
    tamper(
        env,
        f"UPDATE events SET {change} WHERE aggregate_id = '{first}'"
        " AND kind = 'event' AND version = 2",
    )
    refused_on_replay(env)


def test_inv013_a_row_pointed_at_another_aggregates_key_fails(env: Env) -> None:
    first, second = two_goals(env)
    tamper(
        env,
        "UPDATE events SET key_id = (SELECT key_id FROM events WHERE kind = 'key'"
        f" AND aggregate_id = '{second}') WHERE aggregate_id = '{first}' AND kind = 'event'"
        " AND version = 2",
    )
    refused_on_replay(env)


def test_inv013_records_swapped_between_rows_fail(env: Env) -> None:
    first, second = two_goals(env)
    tamper(
        env,
        "CREATE TEMP TABLE saved AS SELECT aggregate_id, record FROM events"
        " WHERE kind = 'event' AND version = 2",
        "UPDATE events SET record = (SELECT record FROM saved WHERE saved.aggregate_id ="
        f" '{second}') WHERE aggregate_id = '{first}' AND kind = 'event' AND version = 2",
    )
    refused_on_replay(env)


@pytest.mark.parametrize("from_end", [4, 40, 200])
def test_inv013_a_flipped_payload_byte_fails(env: Env, from_end: int) -> None:
    two_goals(env)
    row = next(r for r in env.store.read_commit_order() if r.kind == "event")
    damaged = bytearray(row.record)
    damaged[len(damaged) - from_end] ^= 0x10
    tamper(
        env,
        f"UPDATE events SET record = x'{bytes(damaged).hex()}' WHERE event_id = '{row.event_id}'",
    )
    refused_on_replay(env)


def test_projector_cursor_covers_what_was_applied_when_a_later_event_fails(env: Env) -> None:
    first, second = two_goals(env)
    tamper(
        env,
        f"UPDATE events SET version = 5 WHERE aggregate_id = '{second}' AND version = 2",
    )
    projector = env.projector()
    with pytest.raises(EventLogError):
        projector.rebuild()
    # The first aggregate's two events and the second's creation were applied.
    assert projector.model.applied == 3
    assert projector.cursor == Cursor(0, max(
        r.commit_seq for r in env.store.read_commit_order() if r.aggregate_id == second
        and r.kind == "event" and r.version == 1
    ))
    assert projector.model.goal(first) is not None


def test_inv015_envelope_repr_shows_no_domain_text() -> None:
    envelope = Envelope("GoalCreated", 1, {"summary": CANARY}, AT, "tester", "device")
    assert CANARY not in repr(envelope) and CANARY not in str(envelope)
    assert "GoalCreated" in repr(envelope)
