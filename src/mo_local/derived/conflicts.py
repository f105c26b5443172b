"""The conflict log: events skipped at their effective-order position (DESIGN.md §6)."""

from __future__ import annotations

from dataclasses import dataclass

# Reasons the read model adds on top of the reducers' own rule names.
UNREADABLE_EVENT = "unreadable event"
OTHER_AGGREGATE = "event of another aggregate"
UNKNOWN_AGGREGATE_TYPE = "unknown aggregate type"
INVALID_EVENT = "invalid event"


@dataclass(frozen=True)
class ConflictRecord:
    """One skipped event: ids, the short rule name and when it happened — no domain text."""

    event_id: str
    aggregate_id: str
    reason: str
    at: str

    def to_json(self) -> dict[str, str]:
        """The `mo conflicts --json` shape."""
        return {
            "event_id": self.event_id,
            "aggregate_id": self.aggregate_id,
            "reason": self.reason,
            "at": self.at,
        }
