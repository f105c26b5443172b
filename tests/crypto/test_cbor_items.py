"""Hand-built canonical CBOR items (the AAD and record hot path) equal `cbor.encode`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.crypto import cbor
from mo_local.crypto.errors import EncodingError

# Every boundary of the head encoding (RFC 8949 §4.2.1: shortest form).
BOUNDARIES = [0, 1, 23, 24, 255, 256, 65_535, 65_536, (1 << 32) - 1, 1 << 32, (1 << 64) - 1]


@pytest.mark.parametrize("value", BOUNDARIES)
def test_uint_item_at_every_head_boundary(value: int) -> None:
    assert cbor.uint_item(value) == cbor.encode(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_uint_item_equals_encode(value: int) -> None:
    assert cbor.uint_item(value) == cbor.encode(value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_text_item_equals_encode(value: str) -> None:
    assert cbor.text_item(value) == cbor.encode(value)


@pytest.mark.parametrize("size", [0, 23, 24, 255, 256, 65_535, 65_536])
def test_text_and_bytes_items_at_length_boundaries(size: int) -> None:
    assert cbor.text_item("a" * size) == cbor.encode("a" * size)
    assert cbor.bytes_item(b"a" * size) == cbor.encode(b"a" * size)
    assert cbor.bytes_head(size) + b"a" * size == cbor.encode(b"a" * size)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.integers(0, 10), max_size=30))
def test_map_head_equals_encode(fields: dict[str, int]) -> None:
    assert cbor.encode(fields).startswith(cbor.map_head(len(fields)))


@pytest.mark.parametrize(
    "value", [-1, 1 << 64, True, 1.0, "1"], ids=["negative", "too-big", "bool", "float", "text"]
)
def test_uint_item_refuses_values_outside_its_range(value: object) -> None:
    with pytest.raises(EncodingError):
        cbor.uint_item(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", [b"bytes", 1, None, "\udc80"], ids=["bytes", "int", "none", "surrogate"]
)
def test_text_item_refuses_non_text(value: object) -> None:
    with pytest.raises(EncodingError):
        cbor.text_item(value)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=70_000), st.binary(max_size=8))
def test_split_bytes_item_reads_canonical_items(value: bytes, tail: bytes) -> None:
    data = b"\x00" + cbor.encode(value) + tail
    assert cbor.split_bytes_item(data, 1) == (value, len(data) - len(tail))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x60",  # text, not bytes
        b"\x58\x05hello",  # one-byte length below 24
        b"\x59\x00\x05hello",  # two-byte length below 256
        b"\x5a\x00\x00\x00\x05hello",  # four-byte length below 65,536
        b"\x5b" + bytes(7) + b"\x05hello",  # eight-byte lengths are never accepted
        b"\x5f\x45hello\xff",  # indefinite length
        b"\x45hell",  # runs past the end
        b"\x58",  # length byte missing
        b"\x59\x01",  # length truncated
    ],
)
def test_split_bytes_item_refuses_everything_else(data: bytes) -> None:
    assert cbor.split_bytes_item(data, 0) is None
