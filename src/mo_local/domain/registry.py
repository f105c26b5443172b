"""Event type registry: encode events, decode them with upcasting from old payloads.

A stored event is (event type, payload version, data). Decoding an older payload
version runs the registered upcasters one version at a time up to the current
one, then re-validates the result. Anything unreadable becomes a typed error
(`UnknownEvent` or `ValidationError`), never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import call
from typing import Any

from mo_local.domain.errors import UnknownEvent, ValidationError
from mo_local.domain.events import GOAL_EVENTS, PROJECT_EVENTS, DomainEvent

Data = dict[str, object]
Upcaster = Callable[[Data], Data]

# Class, payload version, field names as a set and in order, field loaders.
# (Any: each loader returns the value type of its field.)
_Current = tuple[
    type[DomainEvent], int, frozenset[str], tuple[str, ...], tuple[Callable[[object], Any], ...]
]

EVENT_TYPES: Mapping[str, type[DomainEvent]] = {
    cls.event_type: cls for cls in (*GOAL_EVENTS, *PROJECT_EVENTS)
}


class EventRegistry:
    """Event classes by type name plus upcasters by (type, from payload version)."""

    def __init__(self, event_types: Mapping[str, type[DomainEvent]] = EVENT_TYPES) -> None:
        self._types = dict(event_types)
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        # Per type: its class, current payload version, field names (a set, and in
        # declaration order) and the loader of each field. A payload whose keys are
        # exactly those names has text keys only, which spares the key-by-key check
        # on the fast path of `decode`.
        self._current: dict[str, _Current] = {}
        for name, cls in self._types.items():
            names, loaders = cls.field_loaders()
            self._current[name] = (cls, cls.payload_version, frozenset(names), names, loaders)

    def register_upcaster(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register `fn` turning payload `from_version` into `from_version + 1`."""
        cls = self._types.get(event_type)
        if cls is None or not 1 <= from_version < cls.payload_version:
            raise UnknownEvent(event_type, from_version)
        self._upcasters[(event_type, from_version)] = fn

    def encode(self, event: DomainEvent) -> tuple[str, int, Data]:
        """(event type, payload version, data) of an event."""
        if self._types.get(event.event_type) is not type(event):
            raise UnknownEvent(event.event_type, event.payload_version)
        return event.event_type, event.payload_version, event.to_data()

    def decode(self, event_type: str, payload_version: int, data: object) -> DomainEvent:
        """Rebuild an event from stored parts, upcasting older payload versions."""
        known = self._current.get(event_type) if type(event_type) is str else None
        if (
            known is not None
            and type(payload_version) is int
            and payload_version == known[1]
            and type(data) is dict
            and (data.keys() == known[2] or _text_keys(data))
        ):
            # The current payload version (every replayed event but old ones): nothing
            # to upcast, so no copy of the data. The first try of `from_data`, which
            # validates every field, without its call; it names what is wrong if any.
            try:
                return known[0](*map(call, known[4], map(data.__getitem__, known[3])))
            except (KeyError, ValidationError):
                return known[0].from_data(data)
        # Stored parts are untrusted: check their types before trusting the annotations.
        version = payload_version if _is_int(payload_version) else -1
        cls = self._types.get(event_type) if isinstance(event_type, str) else None
        if cls is None or not 1 <= version <= cls.payload_version:
            raise UnknownEvent(str(event_type), version)
        if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
            raise ValidationError.of("data", "must be a map with text keys")
        current: Data = dict(data)
        for step in range(version, cls.payload_version):
            upcaster = self._upcasters.get((event_type, step))
            if upcaster is None:
                raise UnknownEvent(event_type, step)
            try:
                current = upcaster(current)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # Upcasters see untrusted data; a malformed old payload is invalid input.
                raise ValidationError.of("data", f"cannot upcast from v{step}") from exc
            if not isinstance(current, dict):
                raise ValidationError.of("data", f"cannot upcast from v{step}")
        return cls.from_data(current)


def _text_keys(data: dict[object, object]) -> bool:
    for key in data:
        if type(key) is not str:
            return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _project_created_v1_to_v2(data: Data) -> Data:
    # v1 predates descriptions; an absent description is the empty one.
    upgraded = dict(data)
    upgraded.setdefault("description", "")
    return upgraded


def default_registry() -> EventRegistry:
    """A registry with every event type and every upcaster of this code base."""
    registry = EventRegistry()
    registry.register_upcaster("ProjectCreated", 1, _project_created_v1_to_v2)
    return registry


_DEFAULT = default_registry()


def encode_event(event: DomainEvent) -> tuple[str, int, Data]:
    """(event type, payload version, data) of an event, via the default registry."""
    return _DEFAULT.encode(event)


# Rebuild an event (upcasting old payloads) via the default registry: its bound
# method itself, one call frame less per event of a replay.
decode_event: Callable[[str, int, object], DomainEvent] = _DEFAULT.decode


def register_upcaster(event_type: str, from_version: int, fn: Upcaster) -> None:
    """Add an upcaster to the default registry (for new payload versions in code)."""
    _DEFAULT.register_upcaster(event_type, from_version, fn)
