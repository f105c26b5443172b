"""The value parsers' fast paths for canonical input never change a result.

Each parser first tries a cheap check for input already in canonical form (how
every stored event holds its values) and otherwise runs the full rules. A
leading space always takes the full path (which trims), so comparing `parse(x)`
with `parse(" " + x)` compares the fast path with the full one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.domain import values
from mo_local.domain.errors import ValidationError
from mo_local.domain.events import GoalCreated, GoalRefined, ProjectCreated
from mo_local.domain.registry import decode_event
from mo_local.domain.values import (
    Priority,
    ProjectStatus,
    Slice,
    format_timestamp,
    parse_id,
    parse_month,
    parse_priority,
    parse_slice,
    parse_status,
    parse_timestamp,
)

CANONICAL_SHAPE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
HEX = "0123456789abcdefABCDEF"


def result(parse: Callable[[object], object], raw: object) -> object:
    try:
        return parse(raw)
    except ValidationError as exc:
        return ("invalid", tuple(exc.fields))


def same_as_full_path(parse: Callable[[object], object], raw: str) -> None:
    assert result(parse, raw) == result(parse, " " + raw)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(CANONICAL_SHAPE, fullmatch=True))
def test_timestamp_fast_path_agrees_on_every_canonical_shape(raw: str) -> None:
    """Random digits in the canonical layout: real and unreal dates, 24:00, 60 s, years
    outside 2000–2999 — the fast path answers exactly as the full parser."""
    same_as_full_path(parse_timestamp, raw)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)))
def test_canonical_timestamps_come_back_unchanged(moment: datetime) -> None:
    text = format_timestamp(moment.replace(tzinfo=UTC))
    assert parse_timestamp(text) == text
    same_as_full_path(parse_timestamp, text)


@pytest.mark.parametrize(
    "raw",
    [
        "2025-02-29T00:00:00.000000Z",
        "2025-01-01T24:00:00.000000Z",
        "2025-01-01T23:59:60.000000Z",
        "1999-12-31T23:59:59.999999Z",
        "3000-01-01T00:00:00.000000Z",
        "2025-01-01T00:00:00,000000Z",
        "2025-01-01T00:00:00.000000+00:00",
        "2025-01-01 00:00:00.000000Z",
        "٢٠٢٥-01-01T00:00:00.000000Z",
    ],
)
def test_timestamp_edge_cases_agree(raw: str) -> None:
    same_as_full_path(parse_timestamp, raw)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.uuids(version=4).map(str),
        st.uuids(version=4).map(lambda u: str(u).upper()),
        st.uuids().map(str),
        st.from_regex(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                      fullmatch=True),
        st.text(alphabet=HEX + "-", min_size=30, max_size=40),
    )
)
def test_id_fast_path_agrees(raw: str) -> None:
    same_as_full_path(parse_id, raw)


@pytest.mark.parametrize(
    ("parse", "members"),
    [(parse_slice, list(Slice)), (parse_priority, list(Priority)),
     (parse_status, list(ProjectStatus))],
)
def test_enum_fast_paths_return_the_same_member(
    parse: Callable[[object], object], members: list[object]
) -> None:
    for member in members:
        text = str(member)
        assert parse(text) is member
        assert parse(" " + text) is member
        assert result(parse, text.upper()) == result(parse, " " + text.upper())


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{4}-[0-9]{2}", fullmatch=True))
def test_month_fast_path_agrees(raw: str) -> None:
    first = result(parse_month, raw)
    assert result(parse_month, raw) == first  # the second time from the cache, if valid
    same_as_full_path(parse_month, raw)


def test_month_cache_is_bounded() -> None:
    info = values._canonical_month.cache_info()
    assert info.maxsize is not None and info.maxsize <= (values.YEAR_MAX - values.YEAR_MIN + 1) * 12


def test_decode_fast_path_reports_every_bad_field_like_the_full_path() -> None:
    """A payload with several bad fields names all of them (the fast path gives up and
    the full loop collects the errors)."""
    with pytest.raises(ValidationError) as info:
        decode_event("GoalCreated", 1, {"aggregate_id": "nope", "at": "never", "summary": ""})
    assert set(info.value.fields) == {
        "aggregate_id", "at", "summary", "slice", "priority", "target_month"
    }


def test_decode_fast_path_builds_the_same_events() -> None:
    gid = "3f1c8a5e-1111-4222-8333-444455556666"
    at = "2025-01-02T03:04:05.000000Z"
    created = decode_event(
        "GoalCreated",
        1,
        {"aggregate_id": gid, "at": at, "summary": "Run", "slice": "Health",
         "priority": "must", "target_month": "2027-05"},
    )
    assert created == GoalCreated(
        gid, at, "Run", Slice.HEALTH, Priority.MUST, values.TargetMonth(2027, 5)
    )
    assert decode_event("GoalRefined", 1, {"aggregate_id": gid, "at": at, "summary": " x "}) == (
        GoalRefined(gid, at, "x")
    )
    # Older payload versions still go through the upcasters.
    project = decode_event(
        "ProjectCreated",
        1,
        {"aggregate_id": gid, "at": at, "name": "Bike", "start_date": "2025-01-01",
         "target_date": "2025-02-01"},
    )
    assert isinstance(project, ProjectCreated) and project.description == ""


@pytest.mark.parametrize(
    "data",
    [
        {1: "x", "aggregate_id": "3f1c8a5e-1111-4222-8333-444455556666"},
        {b"k": 1},
    ],
)
def test_decode_still_refuses_non_text_keys(data: dict[object, object]) -> None:
    with pytest.raises(ValidationError) as info:
        decode_event("GoalAchieved", 1, data)
    assert set(info.value.fields) == {"data"}
