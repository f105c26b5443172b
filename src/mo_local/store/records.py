"""Values the store deals in: rows to append, rows read back, effective-order cursors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

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


class StoredEvent(NamedTuple):
    """A row of the event log as read back; `global_seq` is None while the event is pending.

    A named tuple rather than a frozen dataclass: replays build one per row, and
    a tuple is built from the SQLite row in one step instead of nine
    `object.__setattr__` calls. It is just as immutable.
    """

    commit_seq: int
    global_seq: int | None
    event_id: str
    kind: str
    aggregate_type: str
    aggregate_id: str
    version: int
    key_id: str
    record: bytes

    def __repr__(self) -> str:
        # The record bytes are left out, as the dataclass did (repr=False).
        return (
            f"StoredEvent(commit_seq={self.commit_seq}, global_seq={self.global_seq}, "
            f"event_id={self.event_id!r}, kind={self.kind!r}, "
            f"aggregate_type={self.aggregate_type!r}, aggregate_id={self.aggregate_id!r}, "
            f"version={self.version}, key_id={self.key_id!r})"
        )

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


# The column types of a sound row, pending and synced (SQLite hands back exact types).
_PENDING_TYPES: Final = (int, type(None), str, str, str, str, int, str, bytes)
_SYNCED_TYPES: Final = (int, int, str, str, str, str, int, str, bytes)


def stored_event(row: tuple[object, ...]) -> StoredEvent:
    """Build a StoredEvent from a row of `select_events`, refusing impossible types."""
    # A damaged page can hand back values of the wrong storage class; catch that
    # here so callers get StoreCorrupt rather than a TypeError far away.
    types = tuple(map(type, row))
    if (types != _PENDING_TYPES and types != _SYNCED_TYPES) or row[3] not in KINDS:
        raise MalformedRow("event row has impossible column types")
    return StoredEvent._make(row)
