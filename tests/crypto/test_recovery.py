"""The recovery key text: round trip, tolerant reading, typos caught by the checksum."""

from __future__ import annotations

import re

import pytest

from mo_local.crypto.errors import RecoveryKeyFormatError, UnlockFailed
from mo_local.crypto.primitives import random_bytes
from mo_local.crypto.recovery import format_recovery_key, parse_recovery_key

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Fixed so the exhaustive typo test is deterministic.
RAW = bytes.fromhex("8d1f03a2c4b5e6f70819a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7")


def test_round_trip_and_shape() -> None:
    for _ in range(50):
        raw = random_bytes(32)
        text = format_recovery_key(raw)
        assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){13}[0-9A-HJKMNP-TV-Z]{4}", text)
        assert parse_recovery_key(text) == raw


@pytest.mark.parametrize(
    "transform",
    [
        str.lower,
        lambda t: t.replace("-", " "),
        lambda t: t.replace("-", ""),
        lambda t: "  " + t.replace("-", "\n") + "\t",
        lambda t: t.replace("0", "O").replace("1", "I"),
        lambda t: t.replace("0", "o").replace("1", "l"),
        lambda t: t.replace("1", "L"),
    ],
    ids=["lower", "spaces", "no-dashes", "whitespace", "O-and-I", "o-and-l", "L"],
)
def test_parse_is_tolerant(transform: object) -> None:
    text = format_recovery_key(RAW)
    assert "0" in text and "1" in text  # so the look-alike cases test something
    assert parse_recovery_key(transform(text)) == RAW  # type: ignore[operator]


def test_every_single_character_typo_is_caught() -> None:
    text = format_recovery_key(RAW).replace("-", "")
    for position, original in enumerate(text):
        for replacement in CROCKFORD:
            if replacement == original:
                continue
            typo = text[:position] + replacement + text[position + 1 :]
            with pytest.raises(RecoveryKeyFormatError):
                parse_recovery_key(typo)


def test_adjacent_transpositions_are_caught() -> None:
    text = format_recovery_key(RAW).replace("-", "")
    swaps = 0
    for i in range(len(text) - 1):
        if text[i] == text[i + 1]:
            continue
        swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        with pytest.raises(RecoveryKeyFormatError):
            parse_recovery_key(swapped)
        swaps += 1
    assert swaps > 40


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1],
        lambda t: t + "0",
        lambda t: "U" + t[1:],
        lambda t: "*" + t[1:],
        lambda t: "",
    ],
    ids=["short", "long", "U", "symbol", "empty"],
)
def test_malformed_text_is_a_format_error_without_echo(mutate: object) -> None:
    text = format_recovery_key(RAW)
    bad = mutate(text)  # type: ignore[operator]
    with pytest.raises(RecoveryKeyFormatError) as info:
        parse_recovery_key(bad)
    assert isinstance(info.value, UnlockFailed)
    message = str(info.value)
    assert not any(group in message for group in text.split("-"))


def test_format_requires_32_bytes() -> None:
    with pytest.raises(RecoveryKeyFormatError):
        format_recovery_key(bytes(31))
