"""Event registry: round trips, upcasting, typed errors on unreadable input."""

from __future__ import annotations

import json

import cbor2
import pytest
from domain_samples import AT, PROJECT_ID, one_of_each_event
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.domain.errors import DomainError, UnknownEvent, ValidationError
from mo_local.domain.events import DomainEvent, ProjectCreated
from mo_local.domain.registry import (
    EVENT_TYPES,
    EventRegistry,
    decode_event,
    default_registry,
    encode_event,
)

DESIGN_EVENT_NAMES = {
    "GoalCreated", "GoalRefined", "GoalRecategorized", "GoalRescheduled", "GoalPrioritized",
    "GoalAchieved", "GoalUnachieved", "GoalArchived", "ProjectCreated",
    "ProjectStatusTransitioned", "ProjectRescheduled", "ProjectRenamed", "ProjectDescribed",
    "ProjectGoalAdded", "ProjectGoalRemoved", "ProjectMilestoneAdded", "ProjectMilestoneRenamed",
    "ProjectMilestoneRescheduled", "ProjectMilestoneArchived", "ProjectArchived",
}


def test_registry_has_exactly_the_design_events() -> None:
    assert set(EVENT_TYPES) == DESIGN_EVENT_NAMES
    for name, cls in EVENT_TYPES.items():
        assert cls.event_type == name == cls.__name__
        assert cls.aggregate_type in {"goal", "project"}
    assert {type(e).event_type for e in one_of_each_event()} == DESIGN_EVENT_NAMES


@pytest.mark.parametrize("event", one_of_each_event(), ids=lambda e: type(e).event_type)
def test_round_trip_every_event_type(event: DomainEvent) -> None:
    event_type, version, data = encode_event(event)
    assert (event_type, version) == (event.event_type, event.payload_version)
    # Primitives only: survives JSON and canonical CBOR unchanged.
    assert json.loads(json.dumps(data)) == data
    assert cbor2.loads(cbor2.dumps(data, canonical=True)) == data
    assert decode_event(event_type, version, data) == event
    assert decode_event(event_type, version, json.loads(json.dumps(data))) == event


def test_upcaster_project_created_v1_gets_empty_description() -> None:
    current = ProjectCreated.payload_version
    assert current == 2
    v1 = {
        "aggregate_id": PROJECT_ID, "at": AT, "name": "old project",
        "start_date": "2025-01-01", "target_date": "2025-02-01",
    }
    event = decode_event("ProjectCreated", 1, v1)
    assert isinstance(event, ProjectCreated)
    assert event.description == ""
    assert event.name == "old project"
    assert encode_event(event)[1] == 2


def test_custom_upcaster_chain_on_a_fresh_registry() -> None:
    registry = EventRegistry()
    v1 = {"aggregate_id": PROJECT_ID, "at": AT, "title": "legacy", "start_date": "2025-01-01",
          "target_date": "2025-01-02"}
    with pytest.raises(UnknownEvent):  # no upcaster registered yet
        registry.decode("ProjectCreated", 1, v1)

    def rename_title(data: dict[str, object]) -> dict[str, object]:
        out = {k: v for k, v in data.items() if k != "title"}
        out["name"] = data["title"]
        out["description"] = "from v1"
        return out

    registry.register_upcaster("ProjectCreated", 1, rename_title)
    event = registry.decode("ProjectCreated", 1, v1)
    assert isinstance(event, ProjectCreated)
    assert (event.name, event.description) == ("legacy", "from v1")
    # A malformed old payload is a validation error, not a KeyError.
    with pytest.raises(ValidationError):
        registry.decode("ProjectCreated", 1, {"aggregate_id": PROJECT_ID})
    # Upcasters only bridge versions that exist.
    with pytest.raises(UnknownEvent):
        registry.register_upcaster("ProjectCreated", 2, rename_title)
    with pytest.raises(UnknownEvent):
        registry.register_upcaster("Nope", 1, rename_title)


def test_default_registry_is_independent_of_module_state() -> None:
    fresh = default_registry()
    event = one_of_each_event()[8]
    assert fresh.decode(*fresh.encode(event)) == event


@pytest.mark.parametrize(
    ("event_type", "version"),
    [("Nope", 1), ("GoalCreated", 2), ("GoalCreated", 0), ("GoalCreated", -1),
     ("ProjectCreated", 3), ("", 1)],
)
def test_unknown_type_or_version_is_typed(event_type: str, version: int) -> None:
    with pytest.raises(UnknownEvent) as info:
        decode_event(event_type, version, {})
    assert info.value.payload_version == version


def test_wrongly_typed_parts_are_typed_errors() -> None:
    with pytest.raises(UnknownEvent):
        decode_event(None, 1, {})  # type: ignore[arg-type]
    with pytest.raises(UnknownEvent):
        decode_event("GoalAchieved", True, {})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        decode_event("GoalAchieved", 1, ["not", "a", "map"])
    with pytest.raises(ValidationError):
        decode_event("GoalAchieved", 1, {1: "int key"})


def test_malformed_data_names_fields_without_echoing_values() -> None:
    canary = "CANARY-not-a-slice"
    event_type, version, data = encode_event(one_of_each_event()[0])
    bad = dict(data, slice=canary, target_month="2025-13")
    del bad["summary"]
    with pytest.raises(ValidationError) as info:
        decode_event(event_type, version, bad)
    assert set(info.value.fields) == {"slice", "target_month", "summary"}
    assert info.value.fields["summary"] == "missing"
    assert canary not in str(info.value)


def test_encode_refuses_unregistered_event() -> None:
    registry = EventRegistry({})
    with pytest.raises(UnknownEvent):
        registry.encode(one_of_each_event()[0])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from(sorted(EVENT_TYPES)) | st.text(max_size=12),
    version=st.integers(min_value=-2, max_value=4),
    data=_json,
    base=st.sampled_from(one_of_each_event()),
    overrides=st.dictionaries(
        st.sampled_from(["aggregate_id", "at", "summary", "slice", "priority", "target_month",
                         "name", "description", "status", "start_date", "target_date",
                         "goal_id", "milestone_id"]),
        _json,
        max_size=3,
    ),
)
def test_decode_never_crashes(
    event_type: str, version: int, data: object, base: DomainEvent, overrides: dict[str, object]
) -> None:
    """Garbage or mutated payloads give a DomainError or a valid event, never a crash."""
    for candidate in (data, {**encode_event(base)[2], **overrides}):
        try:
            event = decode_event(event_type, version, candidate)
        except DomainError:
            continue
        assert decode_event(*encode_event(event)) == event
