"""`evolved`: a frozen state with some fields changed, at a fraction of `dataclasses.replace`.

Reducers build a new state for every event of a replay; `replace` re-runs the
dataclass `__init__` through keyword arguments (about 2 µs for a goal), this
copies the instance dictionary (about 0.6 µs). It is meant only for the domain's
own state classes: frozen dataclasses without `__slots__` or `__post_init__`,
whose field values the caller has already validated (they come from events).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def evolved(state: T, **changes: object) -> T:
    """A copy of `state` with `changes` applied; TypeError for a field it does not have."""
    fields = state.__dict__.copy()
    known = len(fields)
    fields.update(changes)
    if len(fields) != known:  # a name it did not have was added
        unknown = sorted(changes.keys() - state.__dict__.keys())
        raise TypeError(f"{type(state).__name__} has no field {unknown}")
    return assembled(type(state), fields)


def assembled(cls: type[T], fields: dict[str, object]) -> T:
    """An instance of the frozen dataclass `cls` holding exactly `fields`, without __init__.

    For values already checked, built in bulk (reducers, cache decoding, list views):
    `fields` must name every field once and nothing else, and becomes the instance
    dictionary as it is. Frozen dataclasses refuse attribute assignment, so it is set
    as a whole, exactly as `object.__setattr__` in their generated __init__ would.
    """
    new = object.__new__(cls)
    object.__setattr__(new, "__dict__", fields)
    return new
