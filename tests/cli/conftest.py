"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import Mo


@pytest.fixture
def mo(tmp_path: Path) -> Mo:
    """A `mo` runner on a fresh home."""
    return Mo(tmp_path / "home")
