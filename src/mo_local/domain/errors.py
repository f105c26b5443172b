"""Typed domain errors. Messages name fields and rules, never the user's text."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every error the domain and application layers raise on purpose."""


class ValidationError(DomainError):
    """Input or a rule was violated; `fields` maps a field name to a rule message."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields: dict[str, str] = dict(fields)
        detail = "; ".join(f"{name}: {rule}" for name, rule in sorted(self.fields.items()))
        super().__init__(f"invalid input: {detail}" if detail else "invalid input")

    @classmethod
    def of(cls, field: str, rule: str) -> ValidationError:
        """A validation error about a single field."""
        return cls({field: rule})


class NotFound(DomainError):
    """An aggregate (or a part of one) with this id does not exist."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} not found: {id}")


class ConcurrencyError(DomainError):
    """The caller's known version (or the log's expected version) is stale."""

    def __init__(self, aggregate_id: str, expected: int, actual: int) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stale version for {aggregate_id}: expected {expected}, actual {actual}"
        )


class Conflict(DomainError):
    """The request contradicts what already happened (e.g. a reused idempotency key)."""


class UnknownEvent(DomainError):
    """An event type or payload version this code does not know how to read."""

    def __init__(self, event_type: str, payload_version: int) -> None:
        self.event_type = event_type
        self.payload_version = payload_version
        # The type name is a code identifier, not user text; cap it in case of garbage.
        super().__init__(f"unknown event {event_type[:64]!r} v{payload_version}")


class EventRejected(DomainError):
    """A reducer refused an event at its position; the rule is in `reason`.

    `is_conflict` is False when skipping the event changes nothing a user cares
    about (e.g. the goal is already achieved). `field` and `message` let a
    decision function turn the same rule into a `ValidationError`.
    """

    def __init__(
        self, reason: str, *, field: str, is_conflict: bool = True, message: str | None = None
    ) -> None:
        self.reason = reason
        self.field = field
        self.is_conflict = is_conflict
        self.message = message if message is not None else reason
        super().__init__(reason)

    def as_validation_error(self) -> ValidationError:
        """The same rule, phrased for the caller of a command."""
        return ValidationError.of(self.field, self.message)
