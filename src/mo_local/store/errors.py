"""Typed errors of the local store.

Messages carry ids, numbers and paths only: never record bytes, meta values or
anything read from a damaged file (INV-015).
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base class of every error the store raises."""


class StoreBusy(StoreError):
    """Another process (or another open handle) holds the store's single-writer lock (INV-007)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"store in use by {holder}")


class StoreCorrupt(StoreError):
    """The database file is not SQLite, truncated or malformed."""

    def __init__(self, path: Path, reason: str = "database disk image is malformed") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"the store file {path} is damaged ({reason}); run `mo doctor`")


class ConcurrencyError(StoreError):
    """An append expected another current version of its aggregate; nothing was written."""

    def __init__(self, aggregate_id: str, expected: int, actual: int) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"aggregate {aggregate_id} is at version {actual}, expected {expected}"
        )


class DuplicateEvent(StoreError):
    """An event with this id is already in the store."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id} is already in the store")


class VersionTaken(StoreError):
    """Another event already holds this (aggregate, version) slot."""

    def __init__(self, aggregate_id: str, version: int) -> None:
        self.aggregate_id = aggregate_id
        self.version = version
        super().__init__(f"version {version} of aggregate {aggregate_id} is already taken")


class UnknownEvent(StoreError, LookupError):
    """No event with this id is in the store."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"no event {event_id} in the store")


class ImmutableEvent(StoreError):
    """INV-001: a synced event (or its sync mapping) may not be rewritten or deleted."""


class SchemaTooNew(StoreError):
    """The database was written by a newer MO Local whose schema this code does not know."""

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"the store has schema version {found}; this MO Local supports up to {supported}"
        )


class InvalidArgument(StoreError, ValueError):
    """The caller passed something the store refuses (a malformed batch, a reserved key)."""


class MalformedRow(Exception):
    """Internal: a row read back has impossible types; the store turns it into StoreCorrupt."""
