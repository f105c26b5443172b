"""Length hiding for plaintext before encryption.

``pad`` uses PADMÉ (Nikitin et al., "Reducing Metadata Leakage from Encrypted
Files and Communication with PURBs", PETS 2019): a length L is rounded up so that
only about log2(log2(L)) low bits vary, which costs at most ~12 % overhead and
leaks O(log log L) bits of the size instead of O(log L).

Layout: 4-byte big-endian plaintext length ‖ plaintext ‖ zero fill. Unpadding is
strict (exact bucket size, zero fill) because padded bytes only ever come out of
an authenticated decryption: anything else is a bug, not input to be tolerated.
``pad_fixed`` uses the same layout with a fixed total size, for parts (record
headers) whose size should not vary at all.
"""

from __future__ import annotations

from mo_local.crypto.errors import EncodingError

LENGTH_PREFIX = 4
MAX_PLAINTEXT = (1 << 32) - 1 - LENGTH_PREFIX


def padme(length: int) -> int:
    """The PADMÉ bucket size for ``length`` bytes (``length`` itself when it is < 2)."""
    if length < 0:
        raise EncodingError("length must not be negative")
    if length < 2:
        return length
    exponent = length.bit_length() - 1  # floor(log2 L)
    size_bits = exponent.bit_length()  # floor(log2 E) + 1
    last_bits = exponent - size_bits
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask


def pad(plaintext: bytes) -> bytes:
    """Length-prefix ``plaintext`` and zero-fill it up to its PADMÉ bucket."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise EncodingError("plaintext too large to pad")
    framed = LENGTH_PREFIX + len(plaintext)
    fill = padme(framed) - framed
    return len(plaintext).to_bytes(LENGTH_PREFIX, "big") + plaintext + bytes(fill)


def unpad(padded: bytes) -> bytes:
    """Inverse of ``pad``; EncodingError if ``padded`` is not exactly what ``pad`` makes."""
    length = _framed_length(padded)
    if len(padded) != padme(LENGTH_PREFIX + length):
        raise EncodingError("padded plaintext has the wrong size")
    return _payload(padded, length)


def pad_fixed(plaintext: bytes, size: int) -> bytes:
    """Length-prefix ``plaintext`` and zero-fill it to exactly ``size`` bytes."""
    if LENGTH_PREFIX + len(plaintext) > size:
        raise EncodingError("plaintext does not fit its fixed-size slot")
    fill = size - LENGTH_PREFIX - len(plaintext)
    return len(plaintext).to_bytes(LENGTH_PREFIX, "big") + plaintext + bytes(fill)


def unpad_fixed(padded: bytes, size: int) -> bytes:
    """Inverse of ``pad_fixed``; EncodingError on a wrong size or a malformed frame."""
    if len(padded) != size:
        raise EncodingError("padded plaintext has the wrong size")
    return _payload(padded, _framed_length(padded))


def _framed_length(padded: bytes) -> int:
    if len(padded) < LENGTH_PREFIX:
        raise EncodingError("padded plaintext is too short")
    length = int.from_bytes(padded[:LENGTH_PREFIX], "big")
    if length > len(padded) - LENGTH_PREFIX:
        raise EncodingError("padded plaintext has an impossible length")
    return length


def _payload(padded: bytes, length: int) -> bytes:
    end = LENGTH_PREFIX + length
    if padded[end:].count(0) != len(padded) - end:
        raise EncodingError("padding is not zero")
    return padded[LENGTH_PREFIX:end]
