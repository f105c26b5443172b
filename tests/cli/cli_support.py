"""Helpers shared by the `test_cli_*` files on goals, projects and milestones (no tests here).

Named `test_cli_*` only because new files of this area must be; the helpers
could move into `cli_runner.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Mo

GOAL_KEYS = {"id", "summary", "slice", "priority", "target_month", "achieved", "archived",
             "created_at", "version", "project_ids"}
PROJECT_KEYS = {"id", "name", "status", "start_date", "target_date", "description", "goal_id",
                "milestones", "archived", "created_at", "version"}
MILESTONE_KEYS = {"id", "name", "target_date"}


def new_store(factory: pytest.TempPathFactory, name: str) -> Mo:
    """A `mo` runner on a freshly initialised store (for module-scoped fixtures)."""
    runner = Mo(Path(factory.mktemp(name)) / "home")
    runner.init()
    return runner


def as_dict(value: object) -> dict[str, Any]:
    """A JSON document that must be an object."""
    assert isinstance(value, dict), value
    return value


def as_list(value: object) -> list[dict[str, Any]]:
    """A JSON document that must be a list of objects."""
    assert isinstance(value, list) and all(isinstance(v, dict) for v in value), value
    return value


def event_count(mo: Mo) -> int:
    """Records in the local log, as `mo status` reports them (no passphrase needed)."""
    return int(as_dict(mo.ok("status", MO_PASSPHRASE=""))["events"])


@contextmanager
def log_grows(mo: Mo, by: int = 0) -> Iterator[None]:
    """The block appends exactly `by` records.

    The log only grows, so an exact count after a block of commands proves that
    each rejected command in it wrote nothing.
    """
    before = event_count(mo)
    yield
    assert event_count(mo) == before + by, "the log did not grow as expected"


def refused(mo: Mo, *args: str, code: int = 3, fields: dict[str, str] | None = None
            ) -> dict[str, Any]:
    """Run a command (--json) that must fail with `code`; returns the error object.

    `fields` maps every field the error must name (exactly those) to a fragment of
    its rule; each field and its rule must also be in the message.
    """
    result = mo(*args, "--json")
    assert result.code == code, (args, result.code, result.stderr)
    assert result.stdout == ""
    error = result.error
    if fields is not None:
        got = as_dict(error["fields"])
        assert set(got) == set(fields), (args, got)
        for name, fragment in fields.items():
            assert fragment in got[name], (name, got[name])
            assert f"{name}: {got[name]}" in str(error["message"])
    return error


def add_goal(mo: Mo, summary: str, slice: str = "health", priority: str = "must",
             month: str = "2031-05") -> str:
    """Add a goal; returns its id."""
    created = as_dict(mo.ok("goal", "add", summary, "--slice", slice, "--priority", priority,
                            "--month", month))
    assert set(created) == {"id", "version"} and created["version"] == 1
    return str(created["id"])


def add_project(mo: Mo, name: str, start: str = "2031-01-01", target: str = "2031-12-31",
                *extra: str) -> str:
    """Add a project (extra flags such as --goal ID appended); returns its id."""
    created = as_dict(mo.ok("project", "add", name, "--start", start, "--target", target,
                            *extra))
    assert set(created) == {"id", "version"}
    return str(created["id"])


def show_goal(mo: Mo, goal_id: str) -> dict[str, Any]:
    """The goal object."""
    return as_dict(mo.ok("goal", "show", goal_id))


def show_project(mo: Mo, project_id: str) -> dict[str, Any]:
    """The project object."""
    return as_dict(mo.ok("project", "show", project_id))
