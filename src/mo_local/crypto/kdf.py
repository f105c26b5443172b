"""Passphrase → KEK with Argon2id, and the policy on its parameters.

DESIGN.md §5: default m = 64 MiB, t = 3, p = 1 (RFC 9106's second recommended
option); creation refuses anything under m = 8 MiB, t = 1 (meant for tests);
``doctor`` flags anything under m = 19 MiB, t = 2 (OWASP's minimum for Argon2id).
``MAXIMUM_KDF`` bounds what a vault header may ask for, so a hostile header
cannot make an unlock allocate unbounded memory or spin for hours.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from mo_local.crypto.errors import CryptoError, WeakKdfParameters
from mo_local.crypto.primitives import argon2id

KEK_SIZE = 32


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters: memory in KiB, iterations (t) and lanes (p)."""

    memory_kib: int
    iterations: int
    parallelism: int = 1


DEFAULT_KDF = KdfParams(memory_kib=65536, iterations=3, parallelism=1)
MINIMUM_KDF = KdfParams(memory_kib=8192, iterations=1, parallelism=1)
ADVISORY_KDF = KdfParams(memory_kib=19456, iterations=2, parallelism=1)
MAXIMUM_KDF = KdfParams(memory_kib=1024 * 1024, iterations=64, parallelism=64)


def check_creation_floor(params: KdfParams) -> None:
    """Raise WeakKdfParameters if ``params`` are below the floor for creating a wrap."""
    if (
        params.memory_kib < MINIMUM_KDF.memory_kib
        or params.iterations < MINIMUM_KDF.iterations
        or params.parallelism < MINIMUM_KDF.parallelism
    ):
        raise WeakKdfParameters(
            "KDF parameters are below the minimum (memory 8192 KiB, 1 iteration, 1 lane)"
        )


def within_bounds(params: KdfParams) -> bool:
    """True if Argon2id accepts ``params`` and they stay under ``MAXIMUM_KDF``."""
    return (
        1 <= params.parallelism <= MAXIMUM_KDF.parallelism
        and 1 <= params.iterations <= MAXIMUM_KDF.iterations
        and 8 * params.parallelism <= params.memory_kib <= MAXIMUM_KDF.memory_kib
    )


def is_below_advisory(params: KdfParams) -> bool:
    """True if ``doctor`` should flag ``params`` as weak (memory < 19456 KiB or t < 2)."""
    return (
        params.memory_kib < ADVISORY_KDF.memory_kib or params.iterations < ADVISORY_KDF.iterations
    )


def derive_kek(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """Derive the 32-byte KEK from ``passphrase`` (NFC-normalised, UTF-8) and ``salt``."""
    if not within_bounds(params):
        raise CryptoError("KDF parameters are out of range")
    secret = _passphrase_bytes(passphrase)
    if secret is None:
        raise CryptoError("passphrase is not valid Unicode text")
    return argon2id(
        secret,
        salt,
        memory_kib=params.memory_kib,
        iterations=params.iterations,
        parallelism=params.parallelism,
        length=KEK_SIZE,
    )


def _passphrase_bytes(passphrase: str) -> bytes | None:
    # NFC so that the same passphrase typed on different keyboards/OSes derives one key.
    # None instead of raising here: UnicodeEncodeError's message quotes the offending
    # character of the passphrase, so it must not become the new error's __context__.
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError:
        return None
