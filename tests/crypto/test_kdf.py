"""KDF parameters policy and the passphrase → KEK derivation."""

from __future__ import annotations

import unicodedata

import pytest

from mo_local.crypto.errors import CryptoError, WeakKdfParameters
from mo_local.crypto.kdf import (
    ADVISORY_KDF,
    DEFAULT_KDF,
    MINIMUM_KDF,
    KdfParams,
    check_creation_floor,
    derive_kek,
    is_below_advisory,
    within_bounds,
)

from .conftest import FAST_KDF

SALT = bytes(range(16))


def test_default_is_64_mib_three_iterations_one_lane() -> None:
    assert DEFAULT_KDF == KdfParams(memory_kib=65536, iterations=3, parallelism=1)
    assert MINIMUM_KDF == KdfParams(8192, 1, 1)
    assert ADVISORY_KDF == KdfParams(19456, 2, 1)
    check_creation_floor(DEFAULT_KDF)
    assert not is_below_advisory(DEFAULT_KDF)


@pytest.mark.parametrize(
    "params",
    [KdfParams(8191, 1, 1), KdfParams(8192, 0, 1), KdfParams(8192, 1, 0), KdfParams(1024, 3, 1)],
    ids=["memory-8191", "iterations-0", "parallelism-0", "tiny-memory"],
)
def test_creation_floor_refuses_weak_parameters(params: KdfParams) -> None:
    with pytest.raises(WeakKdfParameters):
        check_creation_floor(params)


def test_creation_floor_accepts_the_minimum() -> None:
    check_creation_floor(MINIMUM_KDF)


@pytest.mark.parametrize(
    ("params", "flagged"),
    [
        (KdfParams(8192, 1, 1), True),
        (KdfParams(19455, 2, 1), True),
        (KdfParams(19456, 1, 1), True),
        (KdfParams(19456, 2, 1), False),
        (KdfParams(65536, 3, 1), False),
    ],
)
def test_doctor_advisory(params: KdfParams, flagged: bool) -> None:
    assert is_below_advisory(params) is flagged


def test_kek_is_deterministic_and_salted() -> None:
    kek = derive_kek("passphrase", SALT, FAST_KDF)
    assert len(kek) == 32
    assert derive_kek("passphrase", SALT, FAST_KDF) == kek
    assert derive_kek("passphrase", bytes(16), FAST_KDF) != kek
    assert derive_kek("passphrasf", SALT, FAST_KDF) != kek
    assert derive_kek("passphrase", SALT, KdfParams(8192, 2, 1)) != kek


def test_kek_normalises_the_passphrase_to_nfc() -> None:
    composed = "caf\u00e9 \u00c5ngstr\u00f6m"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert derive_kek(composed, SALT, FAST_KDF) == derive_kek(decomposed, SALT, FAST_KDF)


def test_kek_refuses_unencodable_passphrase_without_echo() -> None:
    with pytest.raises(CryptoError) as info:
        derive_kek("hunter\ud800zebra", SALT, FAST_KDF)
    assert "hunter" not in str(info.value) and "zebra" not in str(info.value)
    assert info.value.__context__ is None


def test_out_of_range_parameters_are_refused() -> None:
    assert not within_bounds(KdfParams(16 * 1024 * 1024, 1, 1))
    assert not within_bounds(KdfParams(8192, 1000, 1))
    with pytest.raises(CryptoError):
        derive_kek("x", SALT, KdfParams(16 * 1024 * 1024, 1, 1))
