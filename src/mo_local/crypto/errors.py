"""Typed errors of the crypto layer.

Messages are fixed strings chosen here: they never carry passphrases, keys,
recovery keys, plaintext or the bytes that failed to parse (INV-015).
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by ``mo_local.crypto``."""


class EncodingError(CryptoError):
    """Bad, garbled, non-canonical or oversized CBOR, or a malformed record or header."""


class AuthenticationFailed(CryptoError):
    """An AEAD open failed: tampered, moved to another context, or the wrong key."""


class WeakKdfParameters(CryptoError):
    """KDF parameters below the floor allowed when creating or re-wrapping a vault."""


class UnlockFailed(CryptoError):
    """Wrong passphrase or recovery key (deliberately generic)."""


class RecoveryKeyFormatError(UnlockFailed):
    """Recovery key text that is malformed or fails its checksum (caught before any crypto)."""


class VaultLocked(CryptoError):
    """A key was used after the vault was locked."""

    def __init__(self) -> None:
        super().__init__("vault is locked")
