"""Small builders shared by the store tests (imported as a sibling module)."""

from __future__ import annotations

import uuid

from mo_local.store import NewEvent

# Record bytes carry this marker so tests can prove that messages never quote records.
MARKER = b"PLAINTEXT-MARKER"


def record(size: int = 64) -> bytes:
    """Opaque record bytes of about `size` bytes, containing MARKER."""
    body = MARKER + uuid.uuid4().bytes
    return (body * (size // len(body) + 1))[:max(size, len(body))]


def event(aggregate_id: str, version: int, *, event_id: str | None = None, size: int = 64,
          aggregate_type: str = "goal", key_id: str | None = None) -> NewEvent:
    """A kind='event' row."""
    return NewEvent(
        event_id=event_id or str(uuid.uuid4()),
        kind="event",
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        version=version,
        key_id=key_id or f"key-{aggregate_id}",
        record=record(size),
    )


def key_record(aggregate_id: str, *, key_id: str | None = None,
               event_id: str | None = None) -> NewEvent:
    """A kind='key' row (version 0)."""
    return NewEvent(
        event_id=event_id or str(uuid.uuid4()),
        kind="key",
        aggregate_type="goal",
        aggregate_id=aggregate_id,
        version=0,
        key_id=key_id or f"key-{aggregate_id}",
        record=record(48),
    )


def events(aggregate_id: str, first: int, count: int, *, size: int = 64) -> list[NewEvent]:
    """`count` contiguous events of one aggregate starting at version `first`."""
    return [event(aggregate_id, v, size=size) for v in range(first, first + count)]
