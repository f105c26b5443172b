"""The encrypted log's write path: envelope bytes, event ids, and what an append returns."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mo_local.crypto import cbor
from mo_local.crypto.errors import EncodingError
from mo_local.crypto.kdf import KdfParams
from mo_local.crypto.vault import create_vault
from mo_local.domain.events import GoalRefined
from mo_local.domain.registry import encode_event
from mo_local.eventlog import ENVELOPE_FORMAT, EncryptedLog, Envelope, new_event_id
from mo_local.store.eventstore import EventStore


def generic(env: Envelope) -> bytes:
    """The envelope as the generic canonical encoder writes the whole map."""
    return cbor.encode(
        {
            "f": ENVELOPE_FORMAT,
            "at": env.occurred_at,
            "pv": env.payload_version,
            "corr": env.correlation_id,
            "data": env.data,
            "type": env.event_type,
            "actor": env.actor,
            "cause": env.causation_id,
            "device": env.device_id,
        }
    )


texts = st.text(max_size=40)
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64 - 1), texts,
                   st.floats(allow_nan=False), st.lists(texts, max_size=3))


@given(
    event_type=texts,
    payload_version=st.integers(-5, 300),
    data=st.dictionaries(texts, values, max_size=6),
    occurred_at=texts,
    actor=texts,
    device_id=texts,
    causation_id=st.none() | texts,
    correlation_id=st.none() | texts,
)
def test_envelope_bytes_are_the_canonical_encoding_of_the_map(
    event_type: str,
    payload_version: int,
    data: dict[str, object],
    occurred_at: str,
    actor: str,
    device_id: str,
    causation_id: str | None,
    correlation_id: str | None,
) -> None:
    env = Envelope(event_type, payload_version, data, occurred_at, actor, device_id,
                   causation_id, correlation_id)
    try:
        expected = generic(env)
    except EncodingError:
        with pytest.raises(EncodingError):
            env.to_bytes()
        return
    assert env.to_bytes() == expected
    assert Envelope.from_bytes(expected) == env


@pytest.mark.parametrize(
    "field, value",
    [
        ("actor", 7),
        ("occurred_at", b"bytes"),
        ("event_type", "\ud800"),  # a lone surrogate is not valid Unicode
        ("causation_id", ["not", "text"]),
        ("payload_version", True),
        ("data", {"when": object()}),
    ],
)
def test_unusual_fields_give_the_generic_result(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "event_type": "GoalRefined", "payload_version": 1, "data": {"a": "b"},
        "occurred_at": "2025-01-02T03:04:05.000000Z", "actor": "user", "device_id": "d",
        "causation_id": None, "correlation_id": None,
    }
    fields[field] = value
    env = Envelope(**fields)  # type: ignore[arg-type]
    try:
        expected = generic(env)
    except EncodingError:
        with pytest.raises(EncodingError):
            env.to_bytes()
    else:
        assert env.to_bytes() == expected


def test_new_event_ids_are_canonical_random_uuid4s() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id  # canonical lowercase text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_append_returns_the_event_rows_it_wrote_as_the_store_holds_them(
    tmp_path: Path,
) -> None:
    new = create_vault("store", "passphrase", KdfParams(8192, 1, 1))
    store = EventStore.open(tmp_path / "mo.db", create=True)
    try:
        log = EncryptedLog(store, new.vault, "store", "device")
        goal = str(uuid.uuid4())
        at = "2025-01-02T03:04:05.000000Z"
        envelopes = []
        for summary in ("One", "Two"):
            event_type, payload_version, data = encode_event(GoalRefined(goal, at, summary))
            envelopes.append(Envelope(event_type, payload_version, data, at, "user", "device"))
        rows = log.append("goal", goal, 0, envelopes)  # a key record first, then the events
        stored = {row.event_id: row for row in store.read_commit_order()}
        assert len(stored) == 3
        assert [r.version for r in rows] == [1, 2]
        assert rows == [stored[r.event_id] for r in rows]
        opened = list(log.opened_rows(rows))
        assert [o.envelope for o in opened] == envelopes
    finally:
        store.close()
