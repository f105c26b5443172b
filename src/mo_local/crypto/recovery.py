"""The recovery key as a person sees it: readable, typo-tolerant, checksummed.

Format: Crockford base32 of ``raw (32 bytes) ‖ checksum (3 bytes)`` where the
checksum is the first 3 bytes of SHA-256("mo.recovery-key.v1" ‖ raw). 35 bytes
are exactly 56 base32 characters (no padding bits to get wrong), shown as 14
dash-separated groups of 4. A 24-bit checksum lets a typo through with odds of
about 1 in 16 million, so a mistyped key is reported as a typo before any
cryptography runs, instead of as a generic unlock failure.

Parsing ignores case, spaces and dashes, and reads I/L as 1 and O as 0 (the
letters Crockford's alphabet leaves out because they look like digits).
"""

from __future__ import annotations

import base64
import hmac

from mo_local.crypto.errors import RecoveryKeyFormatError
from mo_local.crypto.primitives import sha256

RECOVERY_KEY_SIZE = 32
CHECKSUM_SIZE = 3
GROUP = 4
ENCODED_LENGTH = (RECOVERY_KEY_SIZE + CHECKSUM_SIZE) * 8 // 5

_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_RFC4648, _CROCKFORD)
_FROM_CROCKFORD = str.maketrans(_CROCKFORD, _RFC4648)
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0", " ": None, "-": None})
_CHECKSUM_CONTEXT = b"mo.recovery-key.v1"


def _checksum(raw: bytes) -> bytes:
    return sha256(_CHECKSUM_CONTEXT + raw)[:CHECKSUM_SIZE]


def format_recovery_key(raw: bytes) -> str:
    """Render 32 raw bytes as 14 dash-separated groups of 4 Crockford base32 characters."""
    if len(raw) != RECOVERY_KEY_SIZE:
        raise RecoveryKeyFormatError("a recovery key is 32 bytes")
    text = base64.b32encode(raw + _checksum(raw)).decode("ascii").translate(_TO_CROCKFORD)
    return "-".join(text[i : i + GROUP] for i in range(0, len(text), GROUP))


def parse_recovery_key(text: str) -> bytes:
    """Read a typed recovery key; RecoveryKeyFormatError on bad length, character or checksum."""
    # Other whitespace (tabs, newlines from a paste) is as harmless as spaces.
    compact = "".join(text.split()).upper().translate(_ALIASES)
    if len(compact) != ENCODED_LENGTH:
        raise RecoveryKeyFormatError(
            f"a recovery key has {ENCODED_LENGTH} characters, this one has {len(compact)}"
        )
    if any(ch not in _CROCKFORD for ch in compact):
        raise RecoveryKeyFormatError("the recovery key contains a character that is not allowed")
    decoded = base64.b32decode(compact.translate(_FROM_CROCKFORD))
    raw, checksum = decoded[:RECOVERY_KEY_SIZE], decoded[RECOVERY_KEY_SIZE:]
    if not hmac.compare_digest(checksum, _checksum(raw)):
        raise RecoveryKeyFormatError("the recovery key has a typo (checksum mismatch)")
    return raw
