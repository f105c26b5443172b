"""PADMÉ padding: reversible, strict, and sizes drawn from few buckets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.crypto.errors import EncodingError
from mo_local.crypto.padding import LENGTH_PREFIX, pad, pad_fixed, padme, unpad, unpad_fixed


@pytest.mark.parametrize(
    ("length", "bucket"),
    [
        (4, 4),
        (8, 8),
        (9, 10),
        (17, 18),
        (33, 36),
        (100, 104),
        (129, 144),
        (1000, 1024),
        (1025, 1088),
        (65537, 67584),
    ],
)
def test_padme_buckets(length: int, bucket: int) -> None:
    assert padme(length) == bucket


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=2, max_value=1 << 40))
def test_property_padme_is_a_bucket_with_bounded_overhead(length: int) -> None:
    bucket = padme(length)
    assert length <= bucket <= length * 1.12
    assert padme(bucket) == bucket
    # PADMÉ keeps at most floor(log2 E) + 1 significant bits (E = floor(log2 L)).
    exponent = length.bit_length() - 1
    significant = exponent.bit_length()
    assert bucket % (1 << max(exponent - significant, 0)) == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_property_pad_round_trip_and_size(data: bytes) -> None:
    padded = pad(data)
    assert len(padded) == padme(LENGTH_PREFIX + len(data))
    assert unpad(padded) == data


def test_sizes_leak_less_than_lengths() -> None:
    sizes = {len(pad(b"x" * n)) for n in range(1000, 2000)}
    assert len(sizes) < 30


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p[:3],  # shorter than the length prefix
        lambda p: p[:-1],  # not its bucket size any more
        lambda p: p + b"\x00" * 16,  # a larger, wrong bucket
        lambda p: p[:-1] + b"\x01",  # non-zero fill
        lambda p: (10_000).to_bytes(4, "big") + p[4:],  # impossible length
        lambda p: (5).to_bytes(4, "big") + p[4:],  # length that does not match the bucket
    ],
    ids=["short", "trimmed", "grown", "fill", "impossible", "mismatch"],
)
def test_unpad_refuses_malformed_input(mutate: object) -> None:
    padded = pad(b"y" * 25)
    assert len(padded) > LENGTH_PREFIX + 25  # has a fill to tamper with
    with pytest.raises(EncodingError):
        unpad(mutate(padded))  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_property_fixed_padding_round_trip(data: bytes) -> None:
    padded = pad_fixed(data, 256)
    assert len(padded) == 256
    assert unpad_fixed(padded, 256) == data


def test_fixed_padding_refuses_overflow_and_wrong_sizes() -> None:
    with pytest.raises(EncodingError):
        pad_fixed(b"x" * 253, 256)
    assert len(pad_fixed(b"x" * 252, 256)) == 256
    with pytest.raises(EncodingError):
        unpad_fixed(pad_fixed(b"x", 256), 128)
    with pytest.raises(EncodingError):
        unpad_fixed(pad_fixed(b"x", 256)[:-1] + b"\x07", 256)
