"""Canonical CBOR: strict decoding, refusal of everything outside the data model."""

from __future__ import annotations

import datetime
import enum
import math

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.crypto import cbor
from mo_local.crypto.errors import EncodingError

INT64 = st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


class _Small(enum.IntEnum):
    A = 1


def values(allow_nan: bool) -> st.SearchStrategy[object]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        INT64,
        st.floats(allow_nan=allow_nan),
        TEXT,
        st.binary(max_size=40),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(TEXT, inner, max_size=5)
        ),
        max_leaves=25,
    )


def refused(data: bytes, **limits: int) -> EncodingError:
    with pytest.raises(EncodingError) as info:
        cbor.decode(data, **limits)
    # Never a chained library error: those can echo the input.
    assert info.value.__context__ is None and info.value.__cause__ is None
    return info.value


def test_round_trip_of_a_typical_map() -> None:
    value = {"v": 1, "name": "é", "blob": b"\x00\xff", "items": [1, -2, None, True, 1.5]}
    data = cbor.encode(value)
    assert cbor.decode(data) == value
    assert data == cbor2.dumps(value, canonical=True)


def test_encoding_is_independent_of_insertion_order() -> None:
    assert cbor.encode({"b": 1, "a": 2, "aa": 3}) == cbor.encode({"aa": 3, "a": 2, "b": 1})


def test_duplicate_map_keys_are_refused_without_echo() -> None:
    # {"secretkey": 1, "secretkey": 2}, hand-crafted: no encoder would produce it.
    key = b"\x69secretkey"
    error = refused(b"\xa2" + key + b"\x01" + key + b"\x02")
    assert "secretkey" not in str(error)


def test_non_text_keys_are_refused() -> None:
    refused(b"\xa1\x01\x01")  # {1: 1}
    refused(b"\xa1\x41a\x01")  # {b"a": 1}
    with pytest.raises(EncodingError):
        cbor.encode({1: "x"})
    with pytest.raises(EncodingError):
        cbor.encode({"ok": {b"k": 1}})


@pytest.mark.parametrize(
    "data",
    [
        b"\x18\x01",  # 1 as a one-byte-argument integer
        b"\x19\x00\x01",  # 1 as a two-byte-argument integer
        b"\x78\x01a",  # "a" with a one-byte length
        b"\xa2\x61b\x01\x61a\x02",  # {"b": 1, "a": 2}: unsorted keys
        b"\xa2\x62aa\x01\x61b\x02",  # {"aa": 1, "b": 2}: longer key first
        b"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00",  # 1.5 as a double (a half suffices)
        b"\xb8\x01\x61a\x01",  # one-entry map with a one-byte length
    ],
    ids=["int-1byte", "int-2byte", "text-len", "unsorted", "length-first", "wide-float", "map-len"],
)
def test_non_canonical_input_is_refused(data: bytes) -> None:
    assert "canonical" in str(refused(data))


def test_trailing_bytes_are_refused() -> None:
    assert "trailing" in str(refused(b"\x01\x02"))
    assert "trailing" in str(refused(cbor.encode({"a": 1}) + b"\x00"))


def test_oversize_input_is_refused_before_decoding() -> None:
    data = cbor.encode(b"x" * 100)
    assert cbor.decode(data, max_size=len(data)) == b"x" * 100
    assert "too large" in str(refused(data, max_size=len(data) - 1))
    assert "too large" in str(refused(b"\x00" * (cbor.MAX_SIZE + 1)))


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deepest: object = 1
    for _ in range(cbor.MAX_DEPTH):
        deepest = [deepest]
    assert cbor.decode(cbor.encode(deepest)) == deepest
    refused(b"\x81" * (cbor.MAX_DEPTH + 1) + b"\x01")
    refused(b"\xa1\x61a" * 3 + b"\x01", max_depth=2)
    with pytest.raises(EncodingError):
        cbor.encode([deepest])


@pytest.mark.parametrize(
    "data",
    [
        b"\xc0\x74" + b"2013-03-21T20:04:00Z",  # tag 0: date/time string
        b"\xc1\x1a\x51\x4b\x67\xb0",  # tag 1: epoch time
        b"\xc2\x41\x01",  # tag 2: bignum
        b"\xd8\x23\x63abc",  # tag 35: regular expression
        b"\xd8\x63\x01",  # unknown tag 99
        b"\xd9\xd9\xf7\x01",  # tag 55799: self-described CBOR
        b"\x81\xd8\x63\x01",  # a tag nested in an array
    ],
    ids=["datetime", "epoch", "bignum", "regexp", "unknown", "self-describe", "nested"],
)
def test_tags_are_refused(data: bytes) -> None:
    assert "tags" in str(refused(data))


@pytest.mark.parametrize(
    "data",
    [
        b"\xf7",
        b"\xf0",
        b"\xf8\x20",
        b"\x9f\x01\xff",
        b"\x5f\x41a\xff",
        b"\x62\xff\xfe",
        b"",
        b"\x82\x01",
        b"\x5b" + b"\xff" * 8,
        b"\x9b" + b"\xff" * 8,
    ],
    ids=[
        "undefined",
        "simple",
        "simple-ext",
        "indef-array",
        "indef-bytes",
        "bad-utf8",
        "empty",
        "short",
        "huge-bytes-claim",
        "huge-array-claim",
    ],
)
def test_exotic_or_broken_items_are_refused(data: bytes) -> None:
    refused(data)


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1, 2},
        bytearray(b"x"),
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        1 << 64,
        -(1 << 64) - 1,
        _Small.A,
        "\ud800",
        {"k": object()},
    ],
    ids=["tuple", "set", "bytearray", "datetime", "big", "small", "intenum", "surrogate", "object"],
)
def test_encode_refuses_values_outside_the_data_model(value: object) -> None:
    with pytest.raises(EncodingError) as info:
        cbor.encode(value)
    assert info.value.__context__ is None


def test_64_bit_bounds_round_trip() -> None:
    for n in ((1 << 64) - 1, -(1 << 64), 0, -1, 23, 24, 255, 256):
        assert cbor.decode(cbor.encode(n)) == n


@settings(max_examples=300, deadline=None)
@given(values(allow_nan=False))
def test_property_round_trip(value: object) -> None:
    data = cbor.encode(value)
    assert cbor.decode(data) == value
    assert data == cbor2.dumps(value, canonical=True)


@settings(max_examples=200, deadline=None)
@given(values(allow_nan=True))
def test_property_encoding_is_a_fixed_point(value: object) -> None:
    data = cbor.encode(value)
    assert cbor.encode(cbor.decode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_property_arbitrary_bytes_decode_only_to_their_canonical_form(data: bytes) -> None:
    try:
        value = cbor.decode(data)
    except EncodingError:
        return
    assert cbor.encode(value) == data


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(TEXT, st.one_of(TEXT, st.binary(max_size=30), INT64), max_size=9))
def test_property_prechecked_encoding_equals_canonical(
    fields: dict[str, str | bytes | int],
) -> None:
    ordered = cbor.decode(cbor.encode(fields))  # the decoder keeps the canonical key order
    assert isinstance(ordered, dict)
    assert cbor.encode_prechecked(ordered) == cbor.encode(fields)


def test_nan_is_canonical_half_float() -> None:
    data = cbor.encode(math.nan)
    assert data == b"\xf9\x7e\x00"
    decoded = cbor.decode(data)
    assert isinstance(decoded, float) and math.isnan(decoded)


def test_structure_helpers() -> None:
    fields = cbor.expect_map({"a": 1, "b": "x", "c": b"y"}, frozenset("abc"), "thing")
    assert cbor.field_int(fields, "a", "thing") == 1
    assert cbor.field_str(fields, "b", "thing") == "x"
    assert cbor.field_bytes(fields, "c", "thing") == b"y"
    with pytest.raises(EncodingError):
        cbor.expect_map({"a": 1, "zzz-unexpected": 2}, frozenset("a"), "thing")
    with pytest.raises(EncodingError):
        cbor.expect_map([1], frozenset("a"), "thing")
    with pytest.raises(EncodingError):
        cbor.field_int({"a": True}, "a", "thing")
    with pytest.raises(EncodingError):
        cbor.field_str({"a": b"x"}, "a", "thing")
    with pytest.raises(EncodingError):
        cbor.field_bytes({"a": "x"}, "a", "thing")
