"""Fixtures of the store tests: a fresh store file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mo_local.store import EventStore


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where the test's store lives."""
    return tmp_path / "home" / "mo.db"


@pytest.fixture
def store(store_path: Path) -> Iterator[EventStore]:
    """An open, empty store, closed after the test."""
    s = EventStore.open(store_path, create=True)
    try:
        yield s
    finally:
        s.close()
