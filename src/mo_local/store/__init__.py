"""The local SQLite event log: schema, migrations, single-writer lock, orders."""

from mo_local.store.errors import (
    ConcurrencyError,
    DuplicateEvent,
    ImmutableEvent,
    InvalidArgument,
    SchemaTooNew,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    UnknownEvent,
    VersionTaken,
)
from mo_local.store.eventstore import EventStore
from mo_local.store.records import Cursor, NewEvent, StoredEvent

__all__ = [
    "ConcurrencyError",
    "Cursor",
    "DuplicateEvent",
    "EventStore",
    "ImmutableEvent",
    "InvalidArgument",
    "NewEvent",
    "SchemaTooNew",
    "StoreBusy",
    "StoreCorrupt",
    "StoreError",
    "StoredEvent",
    "UnknownEvent",
    "VersionTaken",
]
