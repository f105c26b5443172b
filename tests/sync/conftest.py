"""Fixtures of the sync tests (defined in sync_fixtures, shared with the test modules)."""

from sync_fixtures import make_device, server

__all__ = ["make_device", "server"]
