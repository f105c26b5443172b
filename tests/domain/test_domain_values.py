"""Value rules of DESIGN.md §3: slices, priorities, months, dates, text limits, ids."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mo_local.domain.errors import ValidationError
from mo_local.domain.values import (
    Priority,
    ProjectStatus,
    Slice,
    TargetMonth,
    format_timestamp,
    new_id,
    parse_date,
    parse_description,
    parse_id,
    parse_month,
    parse_name,
    parse_priority,
    parse_slice,
    parse_status,
    parse_summary,
    parse_timestamp,
)

CANARY = "CANARY-secret-text-7f3a"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Health", Slice.HEALTH),
        ("health", Slice.HEALTH),
        ("FAMILY", Slice.FAMILY),
        ("relationships", Slice.RELATIONSHIPS),
        ("wOrK", Slice.WORK),
        ("money", Slice.MONEY),
        ("learning", Slice.LEARNING),
        ("Mindfulness", Slice.MINDFULNESS),
        (" leisure ", Slice.LEISURE),
    ],
)
def test_slice_accepts_any_case_and_is_canonical(raw: str, expected: Slice) -> None:
    parsed = parse_slice(raw)
    assert parsed is expected
    assert parsed.value[0].isupper() and parsed.value[1:].islower()


@pytest.mark.parametrize("raw", ["", "Sport", "healthy", None, 3])
def test_slice_rejects_unknown(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_slice(raw)
    assert set(info.value.fields) == {"slice"}
    assert "Health" in info.value.fields["slice"]


def test_there_are_exactly_eight_slices() -> None:
    assert [s.value for s in Slice] == [
        "Health", "Family", "Relationships", "Work", "Money", "Learning", "Mindfulness", "Leisure",
    ]


def test_priority_order_must_should_maybe() -> None:
    assert parse_priority("MUST") is Priority.MUST
    assert Priority.MUST.rank > Priority.SHOULD.rank > Priority.MAYBE.rank
    with pytest.raises(ValidationError):
        parse_priority("could")


def test_status_values() -> None:
    assert [s.value for s in ProjectStatus] == ["planned", "in_progress", "completed", "canceled"]
    assert parse_status("Completed") is ProjectStatus.COMPLETED
    with pytest.raises(ValidationError) as info:
        parse_status("done")
    assert set(info.value.fields) == {"status"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2000-01", TargetMonth(2000, 1)), ("2999-12", TargetMonth(2999, 12)),
     ("2025-02", TargetMonth(2025, 2))],
)
def test_month_valid(raw: str, expected: TargetMonth) -> None:
    assert parse_month(raw) == expected
    assert str(parse_month(raw)) == raw


@pytest.mark.parametrize(
    "raw", ["1999-12", "3000-01", "2025-13", "2025-00", "2025-1", "25-01", "2025/01", "", None]
)
def test_month_invalid(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_month(raw)
    assert set(info.value.fields) == {"target_month"}


def test_target_month_object_refuses_unreal_month() -> None:
    with pytest.raises(ValidationError):
        TargetMonth(2025, 13)
    assert TargetMonth(2025, 1) < TargetMonth(2025, 2) < TargetMonth(2026, 1)


@pytest.mark.parametrize("raw", ["2024-02-29", "2000-01-01", "2999-12-31", "2025-04-30"])
def test_date_valid(raw: str) -> None:
    assert parse_date(raw).isoformat() == raw


@pytest.mark.parametrize(
    "raw",
    ["2025-02-29", "2025-04-31", "2025-13-01", "1999-12-31", "3000-01-01", "2025-1-1",
     "20250101", "2025-01-01T00:00", "", None],
)
def test_date_invalid_real_calendar(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_date(raw, "start_date")
    assert set(info.value.fields) == {"start_date"}


def test_summary_trimmed_and_limits() -> None:
    assert parse_summary("  run a marathon \n") == "run a marathon"
    assert len(parse_summary("x" * 500)) == 500
    assert parse_summary("  " + "x" * 500 + "  ") == "x" * 500
    for bad in ["x" * 501, "", "   ", None]:
        with pytest.raises(ValidationError) as info:
            parse_summary(bad)
        assert info.value.fields == {"summary": "summary must be 1–500 characters after trimming"}


def test_name_limits() -> None:
    assert parse_name(" " + "n" * 200 + " ") == "n" * 200
    with pytest.raises(ValidationError):
        parse_name("n" * 201)
    with pytest.raises(ValidationError):
        parse_name(" \t ")


def test_description_limits() -> None:
    assert parse_description("") == ""
    assert parse_description("d" * 2000) == "d" * 2000
    with pytest.raises(ValidationError):
        parse_description("d" * 2001)


def test_ids_must_be_uuid4() -> None:
    fresh = new_id()
    assert parse_id(fresh) == fresh
    assert parse_id(fresh.upper()) == fresh
    assert new_id() != fresh
    for bad in [
        "not-an-id",
        "",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # version 1: leaks time
        fresh.replace("-", ""),
        fresh[:-1] + "-",
        None,
    ]:
        with pytest.raises(ValidationError):
            parse_id(bad, "goal_id")


def test_timestamps_are_canonical_utc() -> None:
    assert parse_timestamp("2025-01-02T03:04:05Z") == "2025-01-02T03:04:05.000000Z"
    assert parse_timestamp("2025-01-02T05:04:05+02:00") == "2025-01-02T03:04:05.000000Z"
    moment = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-3)))
    text = format_timestamp(moment)
    assert text == "2025-05-06T10:08:09.123456Z"
    assert parse_timestamp(text) == text
    assert format_timestamp(datetime(2030, 1, 1, tzinfo=UTC)).startswith("2030-01-01T00:00:00")
    for bad in ["2025-01-02T03:04:05", "yesterday", "", "0001-01-01T00:00:00+01:00", None]:
        with pytest.raises(ValidationError):
            parse_timestamp(bad)


@pytest.mark.parametrize(
    "parser",
    [parse_slice, parse_priority, parse_status, parse_month, parse_date, parse_summary,
     parse_name, parse_id, parse_timestamp],
)
def test_inv015_error_messages_never_echo_input(parser: object) -> None:
    """INV-015: a rejected value (maybe domain text) is not in the error message."""
    assert callable(parser)
    for raw in [CANARY * 100, " " + CANARY * 30]:
        with pytest.raises(ValidationError) as info:
            parser(raw)
        assert CANARY not in str(info.value)
        assert CANARY not in repr(info.value)
        assert all(CANARY not in rule for rule in info.value.fields.values())
    with pytest.raises(ValidationError) as info:
        parse_description(CANARY * 1000)
    assert CANARY not in str(info.value)


def test_dates_compare_as_dates() -> None:
    assert parse_date("2025-01-31") < parse_date("2025-02-01")
    assert parse_date("2024-02-29") == date(2024, 2, 29)
