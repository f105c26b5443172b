"""The only module that calls ``cryptography`` and ``argon2``.

Everything else in the project uses the intention-revealing functions built on
top of these (vault, records). Nothing here invents a primitive: AES-256-GCM,
HKDF-SHA256 and Argon2id come from audited libraries.
"""

from __future__ import annotations

import hashlib
import os

from argon2.exceptions import Argon2Error
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mo_local.crypto.errors import AuthenticationFailed, CryptoError

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
AEAD_OVERHEAD = NONCE_SIZE + TAG_SIZE
ARGON2_VERSION = 0x13


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    if n < 0:
        raise CryptoError("random byte count must not be negative")
    return os.urandom(n)


class Aead:
    """AES-256-GCM with a fresh random 96-bit nonce per seal; blob = nonce ‖ ciphertext ‖ tag."""

    __slots__ = ("_aesgcm",)

    def __init__(self, key: bytes) -> None:
        """Bind a 32-byte key; the cipher object is built once and reused for speed."""
        if len(key) != KEY_SIZE:
            raise CryptoError("AEAD key must be 32 bytes")
        self._aesgcm: AESGCM | None = AESGCM(bytes(key))

    def __repr__(self) -> str:
        state = "closed" if self._aesgcm is None else "open"
        return f"Aead(<{state}>)"

    def _cipher(self) -> AESGCM:
        if self._aesgcm is None:
            raise CryptoError("key is no longer available")
        return self._aesgcm

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` bound to ``aad``."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._cipher().encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt ``blob``; raise AuthenticationFailed on any failure."""
        cipher = self._cipher()
        if len(blob) < AEAD_OVERHEAD:
            raise AuthenticationFailed("ciphertext failed authentication")
        view = memoryview(blob)
        try:
            return cipher.decrypt(view[:NONCE_SIZE], view[NONCE_SIZE:], aad)
        except InvalidTag:
            raise AuthenticationFailed("ciphertext failed authentication") from None

    def close(self) -> None:
        """Drop the cipher so that later use raises CryptoError (used by ``lock``)."""
        self._aesgcm = None

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._aesgcm is None


def hkdf_sha256(key: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) without salt: derive a sub-key of ``key`` for ``info``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(bytes(key))


def argon2id(
    secret: bytes,
    salt: bytes,
    *,
    memory_kib: int,
    iterations: int,
    parallelism: int,
    length: int = 32,
) -> bytes:
    """Argon2id (RFC 9106, version 0x13) raw hash of ``secret`` with ``salt``."""
    try:
        return bytes(
            hash_secret_raw(
                secret,
                salt,
                time_cost=iterations,
                memory_cost=memory_kib,
                parallelism=parallelism,
                hash_len=length,
                type=Type.ID,
                version=ARGON2_VERSION,
            )
        )
    except Argon2Error:
        # The library's message may describe its inputs; replace it with a fixed one.
        raise CryptoError("Argon2id failed with the given parameters") from None


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data`` (checksums, not secrets derivation)."""
    return hashlib.sha256(data).digest()
