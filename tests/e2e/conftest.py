"""Fixtures of the end-to-end tests: server backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Server


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A real `mo-server run` on SQLite or on PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    srv = Server(url, tmp_path / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()
