"""Values the store deals in: rows to append, rows read back, effective-order cursors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from mo_local.store.errors import InvalidArgument, MalformedRow

KIND_EVENT: Final = "event"
KIND_KEY: Final = "key"
KINDS: Final = frozenset({KIND_EVENT, KIND_KEY})


def _check_routing(kind: str, version: int) -> None:
    if kind not in KINDS:
        raise InvalidArgument(f"kind must be 'event' or 'key', not {kind!r}")
    if kind == KIND_KEY and version != 0:
        raise InvalidArgument("a key record has version 0")
    if kind == KIND_EVENT and version < 1:
        raise InvalidArgument("an event has a version >= 1")


@dataclass(frozen=True)
class NewEvent:
    """A sealed record to append, with the plaintext routing columns DESIGN.md §6 allows."""

    event_id: str
    kind: str
    aggregate_type: str
    aggregate_id: str
    version: int
    key_id: str
    record: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_routing(self.kind, self.version)


@dataclass(frozen=True)
class StoredEvent:
    """A row of the event log as read back; `global_seq` is None while the event is pending."""

    commit_seq: int
    global_seq: int | None
    event_id: str
    kind: str
    aggregate_type: str
    aggregate_id: str
    version: int
    key_id: str
    record: bytes = field(repr=False)

    @property
    def synced(self) -> bool:
        """True once the server has assigned this event a global sequence."""
        return self.global_seq is not None


@dataclass(frozen=True)
class Cursor:
    """Effective-order cursor (G, C): applied = {global_seq <= G} ∪ {commit_seq <= C}."""

    synced: int = 0
    committed: int = 0


EVENT_COLUMNS: Final = (
    "e.commit_seq, {global_seq}, e.event_id, e.kind, e.aggregate_type, e.aggregate_id, "
    "e.version, e.key_id, e.record"
)


def select_events(global_seq: str = "m.global_seq") -> str:
    """The SELECT list matching `stored_event`; `global_seq` is the expression for that column."""
    return "SELECT " + EVENT_COLUMNS.format(global_seq=global_seq)


def stored_event(row: tuple[object, ...]) -> StoredEvent:
    """Build a StoredEvent from a row of `select_events`, refusing impossible types."""
    (commit_seq, global_seq, event_id, kind, aggregate_type, aggregate_id, version, key_id,
     record) = row
    # A damaged page can hand back values of the wrong storage class; catch that
    # here so callers get StoreCorrupt rather than a TypeError far away.
    if not (
        isinstance(commit_seq, int)
        and (global_seq is None or isinstance(global_seq, int))
        and isinstance(event_id, str)
        and isinstance(kind, str)
        and kind in KINDS
        and isinstance(aggregate_type, str)
        and isinstance(aggregate_id, str)
        and isinstance(version, int)
        and isinstance(key_id, str)
        and isinstance(record, bytes)
    ):
        raise MalformedRow("event row has impossible column types")
    return StoredEvent(
        commit_seq=commit_seq,
        global_seq=global_seq,
        event_id=event_id,
        kind=kind,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        version=version,
        key_id=key_id,
        record=record,
    )
