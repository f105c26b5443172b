"""Value rules of goals and projects (DESIGN.md §3).

Every parser takes raw input (`object`, so it also serves decoding of stored
events), returns the canonical value, and raises `ValidationError` naming the
field and the rule — never echoing the input, which may be domain text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache

from mo_local.domain.errors import ValidationError

SUMMARY_MAX = 500
NAME_MAX = 200
DESCRIPTION_MAX = 2000
YEAR_MIN = 2000
YEAR_MAX = 2999


class Slice(StrEnum):
    """One of the eight life areas of the balanced wheel."""

    HEALTH = "Health"
    FAMILY = "Family"
    RELATIONSHIPS = "Relationships"
    WORK = "Work"
    MONEY = "Money"
    LEARNING = "Learning"
    MINDFULNESS = "Mindfulness"
    LEISURE = "Leisure"


class Priority(StrEnum):
    """Goal priority; `rank` orders must > should > maybe."""

    MUST = "must"
    SHOULD = "should"
    MAYBE = "maybe"

    @property
    def rank(self) -> int:
        """3 for must, 2 for should, 1 for maybe (higher is more important)."""
        return {"must": 3, "should": 2, "maybe": 1}[self.value]


class ProjectStatus(StrEnum):
    """Project status; any status may change to any other."""

    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"


_MONTH_RE = re.compile(r"\A(\d{4})-(\d{2})\Z")
_DATE_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_UUID4_RE = re.compile(
    r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}\Z"
)
_TIMESTAMP_RULE = "must be an ISO-8601 timestamp with a UTC offset, year 2000–2999"

# Fast paths for values already in canonical form, which is how every stored event
# holds them: each accepts only input for which the full parser would return the
# input itself (or the same member), so results never differ; anything else takes
# the full parser. Replays decode every event, hence the care.
_CANONICAL_UUID4_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)
_CANONICAL_MONTH_RE = re.compile(r"2[0-9]{3}-[0-9]{2}")
# Year 2000–2999 by the pattern; fromisoformat then checks the calendar and clock.
_CANONICAL_TIMESTAMP_RE = re.compile(
    r"2[0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
)


@dataclass(frozen=True, order=True)
class TargetMonth:
    """A real calendar month `YYYY-MM` with a year in 2000–2999."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (YEAR_MIN <= self.year <= YEAR_MAX and 1 <= self.month <= 12):
            raise ValidationError.of("target_month", _MONTH_RULE)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


_MONTH_RULE = f"must be a real month YYYY-MM with a year in {YEAR_MIN}–{YEAR_MAX}"


def _one_of(values: list[str]) -> str:
    return "must be one of " + ", ".join(values)


_SLICES: dict[str, Slice] = {s.value: s for s in Slice}
_PRIORITIES: dict[str, Priority] = {p.value: p for p in Priority}
_STATUSES: dict[str, ProjectStatus] = {s.value: s for s in ProjectStatus}


def parse_slice(raw: object, field: str = "slice") -> Slice:
    """A slice from any letter case, e.g. 'health' → Slice.HEALTH."""
    if type(raw) is str and (exact := _SLICES.get(raw)) is not None:
        return exact
    if isinstance(raw, str):
        wanted = raw.strip().casefold()
        for candidate in Slice:
            if candidate.value.casefold() == wanted:
                return candidate
    raise ValidationError.of(field, _one_of([s.value for s in Slice]))


def parse_priority(raw: object, field: str = "priority") -> Priority:
    """A priority from any letter case: must, should or maybe."""
    if type(raw) is str and (exact := _PRIORITIES.get(raw)) is not None:
        return exact
    if isinstance(raw, str):
        wanted = raw.strip().casefold()
        for candidate in Priority:
            if candidate.value == wanted:
                return candidate
    raise ValidationError.of(field, _one_of([p.value for p in Priority]))


def parse_status(raw: object, field: str = "status") -> ProjectStatus:
    """A project status: planned, in_progress, completed or canceled."""
    if type(raw) is str and (exact := _STATUSES.get(raw)) is not None:
        return exact
    if isinstance(raw, str):
        wanted = raw.strip().casefold()
        for candidate in ProjectStatus:
            if candidate.value == wanted:
                return candidate
    raise ValidationError.of(field, _one_of([s.value for s in ProjectStatus]))


def parse_month(raw: object, field: str = "target_month") -> TargetMonth:
    """A target month from `YYYY-MM`."""
    if type(raw) is str and _CANONICAL_MONTH_RE.fullmatch(raw) is not None:
        known = _canonical_month(raw)
        if known is not None:
            return known
    if isinstance(raw, str):
        match = _MONTH_RE.match(raw.strip())
        if match:
            year, month = int(match.group(1)), int(match.group(2))
            if YEAR_MIN <= year <= YEAR_MAX and 1 <= month <= 12:
                return TargetMonth(year, month)
    raise ValidationError.of(field, _MONTH_RULE)


# Only text matching _CANONICAL_MONTH_RE gets here (at most 10,000 distinct strings);
# an LRU of 4,096 keeps the months in use without holding all of them.
@lru_cache(maxsize=4096)
def _canonical_month(text: str) -> TargetMonth | None:
    year, month = int(text[:4]), int(text[5:])
    return TargetMonth(year, month) if 1 <= month <= 12 else None


def parse_date(raw: object, field: str = "target_date") -> date:
    """A real calendar date from `YYYY-MM-DD` (2025-02-29 is refused)."""
    if isinstance(raw, str):
        text = raw.strip()
        if _DATE_RE.match(text):
            try:
                parsed = date.fromisoformat(text)
            except ValueError:
                parsed = None
            if parsed is not None and YEAR_MIN <= parsed.year <= YEAR_MAX:
                return parsed
    raise ValidationError.of(
        field, f"must be a real date YYYY-MM-DD with a year in {YEAR_MIN}–{YEAR_MAX}"
    )


def _trimmed(raw: object, field: str, label: str, low: int, high: int) -> str:
    if isinstance(raw, str):
        text = raw.strip()
        if low <= len(text) <= high:
            return text
    raise ValidationError.of(field, f"{label} must be {low}–{high} characters after trimming")


def parse_summary(raw: object, field: str = "summary") -> str:
    """A goal summary: trimmed, 1–500 characters."""
    if type(raw) is str:  # the common case in one frame; _trimmed decides the rest
        text = raw.strip()
        if 1 <= len(text) <= SUMMARY_MAX:
            return text
    return _trimmed(raw, field, "summary", 1, SUMMARY_MAX)


def parse_name(raw: object, field: str = "name") -> str:
    """A project or milestone name: trimmed, 1–200 characters."""
    if type(raw) is str:  # as in parse_summary
        text = raw.strip()
        if 1 <= len(text) <= NAME_MAX:
            return text
    return _trimmed(raw, field, "name", 1, NAME_MAX)


def parse_description(raw: object, field: str = "description") -> str:
    """A project description: 0–2000 characters (kept as given, not trimmed)."""
    if isinstance(raw, str) and len(raw) <= DESCRIPTION_MAX:
        return raw
    raise ValidationError.of(field, f"description must be 0–{DESCRIPTION_MAX} characters")


def parse_id(raw: object, field: str = "id") -> str:
    """A UUIDv4 in canonical lowercase form."""
    if type(raw) is str and _CANONICAL_UUID4_RE.fullmatch(raw) is not None:
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if _UUID4_RE.match(text):
            return text.lower()
    raise ValidationError.of(field, "must be a UUIDv4 (8-4-4-4-12 hex digits)")


def id_parser(field: str) -> Callable[[object], str]:
    """`parse_id` with the field name bound, for decoders that parse an id per event.

    A closure rather than `partial(parse_id, field=...)`: a partial with a keyword
    builds a dictionary on every call. Canonical ids are accepted in one frame.
    """

    def parse(raw: object) -> str:
        if type(raw) is str and _CANONICAL_UUID4_RE.fullmatch(raw) is not None:
            return raw
        return parse_id(raw, field)

    return parse


def date_parser(field: str) -> Callable[[object], date]:
    """`parse_date` with the field name bound (see `id_parser`)."""

    def parse(raw: object) -> date:
        return parse_date(raw, field)

    return parse


def parse_optional_id(raw: object, field: str) -> str | None:
    """None stays None; anything else must be a UUIDv4."""
    return None if raw is None else parse_id(raw, field)


def new_id() -> str:
    """A fresh random UUIDv4 string (random, so ids leak no time)."""
    return str(uuid.uuid4())


def parse_timestamp(raw: object, field: str = "at") -> str:
    """An ISO-8601 timestamp with a UTC offset, as canonical `...T..:..:..ffffffZ`."""
    if type(raw) is str and _CANONICAL_TIMESTAMP_RE.fullmatch(raw) is not None:
        try:
            datetime.fromisoformat(raw)
        except ValueError:
            pass  # e.g. 2025-02-30: the full parser below refuses it
        else:
            return raw
    if isinstance(raw, str) and 0 < len(raw) <= 64:
        try:
            parsed = datetime.fromisoformat(raw.strip())
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            try:
                return format_timestamp(parsed)
            except ValidationError:
                pass
    raise ValidationError.of(field, _TIMESTAMP_RULE)


def format_timestamp(moment: datetime) -> str:
    """Canonical UTC text of an aware datetime, e.g. 2025-01-02T03:04:05.000000Z."""
    try:
        utc = moment.astimezone(UTC) if moment.tzinfo is not None else None
    except OverflowError:
        utc = None
    if utc is None or not (YEAR_MIN <= utc.year <= YEAR_MAX):
        raise ValidationError.of("at", _TIMESTAMP_RULE)
    # Formatted by hand: strftime("%Y") does not zero-pad on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )
