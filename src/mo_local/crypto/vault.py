"""The vault: K_vault, the root key, and the header that stores it wrapped.

K_vault (32 random bytes) exists at rest only inside two AES-256-GCM wraps kept
in the ``VaultHeader``: one under the KEK = Argon2id(passphrase, salt), one under
HKDF(recovery key, "mo.recovery-wrap.v1"). Sub-keys come from HKDF(K_vault,
"mo.<purpose>.v1"): K_stream ("stream") seals record headers, the cache key
("cache") seals derived state, and "dek-wrap" (reserved, internal) wraps DEKs.
Wrapping DEKs under a derived key rather than K_vault itself keeps K_vault an
HKDF input only, never also an AES key.

Wrap AAD = canonical CBOR of {v: format version, purpose, store_id, vault_id}
and, for the passphrase wrap, the KDF parameters and the salt. Tampering with
any of them (e.g. lowering the KDF cost, moving the header to another store)
makes unlocking fail. The header's ``revision`` is deliberately NOT bound:
changing the passphrase re-wraps only the passphrase wrap and bumps the
revision, and the untouched recovery wrap must stay valid (and vice versa when
the recovery key is rotated). Rollback to an older revision is therefore not
prevented by the AEAD; the sync layer refuses older revisions (DESIGN.md §9).

Locking overwrites the bytearray that holds K_vault and closes every cipher
object derived from it. Python cannot guarantee that no other copy of a key
survives in memory (immutable ``bytes`` handed to callers, the cipher library's
own buffers); dropping every reference is the best this runtime allows.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import NoReturn

from mo_local.crypto import cbor
from mo_local.crypto.errors import (
    AuthenticationFailed,
    CryptoError,
    EncodingError,
    UnlockFailed,
    VaultLocked,
)
from mo_local.crypto.kdf import (
    DEFAULT_KDF,
    KdfParams,
    check_creation_floor,
    derive_kek,
    within_bounds,
)
from mo_local.crypto.primitives import AEAD_OVERHEAD, Aead, hkdf_sha256, random_bytes
from mo_local.crypto.recovery import format_recovery_key, parse_recovery_key

VAULT_FORMAT = 1
VAULT_KEY_SIZE = 32
SALT_SIZE = 16
WRAP_SIZE = VAULT_KEY_SIZE + AEAD_OVERHEAD
MAX_ID_LENGTH = 128
MAX_HEADER_SIZE = 4096
DEK_SIZE = 32

_PURPOSE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_RESERVED_PURPOSES = frozenset({"dek-wrap", "recovery-wrap"})
_RECOVERY_WRAP_INFO = b"mo.recovery-wrap.v1"
_HEADER_KEYS = frozenset(
    {"v", "vault_id", "store_id", "revision", "kdf", "salt", "passphrase_wrap", "recovery_wrap"}
)
_KDF_KEYS = frozenset({"memory_kib", "iterations", "parallelism"})
_WHAT = "vault header"
_UNLOCK_FAILED = "unlock failed: wrong passphrase or recovery key, or an altered vault header"


def _check_id(value: object, name: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise EncodingError(f"{_WHAT}: {name} must be 1 to {MAX_ID_LENGTH} characters")


@dataclass(frozen=True)
class VaultHeader:
    """What is stored (locally and, opaque, on the server) to unlock a vault."""

    format_version: int
    vault_id: str
    store_id: str
    revision: int
    kdf: KdfParams
    salt: bytes
    passphrase_wrap: bytes
    recovery_wrap: bytes

    def __post_init__(self) -> None:
        if type(self.format_version) is not int or self.format_version != VAULT_FORMAT:
            raise EncodingError(f"{_WHAT}: unsupported format version")
        _check_id(self.vault_id, "vault_id")
        _check_id(self.store_id, "store_id")
        if type(self.revision) is not int or self.revision < 1:
            raise EncodingError(f"{_WHAT}: revision must be a positive integer")
        if not all(
            type(v) is int for v in (self.kdf.memory_kib, self.kdf.iterations, self.kdf.parallelism)
        ) or not within_bounds(self.kdf):
            raise EncodingError(f"{_WHAT}: KDF parameters out of range")
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_SIZE:
            raise EncodingError(f"{_WHAT}: salt must be {SALT_SIZE} bytes")
        for wrap in (self.passphrase_wrap, self.recovery_wrap):
            if not isinstance(wrap, bytes) or len(wrap) != WRAP_SIZE:
                raise EncodingError(f"{_WHAT}: a key wrap has the wrong size")

    def to_bytes(self) -> bytes:
        """Canonical CBOR map, with the format version under ``v``."""
        return cbor.encode(
            {
                "v": self.format_version,
                "vault_id": self.vault_id,
                "store_id": self.store_id,
                "revision": self.revision,
                "kdf": {
                    "memory_kib": self.kdf.memory_kib,
                    "iterations": self.kdf.iterations,
                    "parallelism": self.kdf.parallelism,
                },
                "salt": self.salt,
                "passphrase_wrap": self.passphrase_wrap,
                "recovery_wrap": self.recovery_wrap,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> VaultHeader:
        """Parse ``to_bytes`` output; EncodingError on garbage or an unknown version."""
        value = cbor.decode(data, max_size=MAX_HEADER_SIZE, max_depth=2)
        if isinstance(value, dict) and "v" in value and value["v"] != VAULT_FORMAT:
            raise EncodingError(f"{_WHAT}: unsupported format version")
        fields = cbor.expect_map(value, _HEADER_KEYS, _WHAT)
        kdf = cbor.expect_map(fields["kdf"], _KDF_KEYS, _WHAT + " KDF parameters")
        return cls(
            format_version=cbor.field_int(fields, "v", _WHAT),
            vault_id=cbor.field_str(fields, "vault_id", _WHAT),
            store_id=cbor.field_str(fields, "store_id", _WHAT),
            revision=cbor.field_int(fields, "revision", _WHAT),
            kdf=KdfParams(
                memory_kib=cbor.field_int(kdf, "memory_kib", _WHAT),
                iterations=cbor.field_int(kdf, "iterations", _WHAT),
                parallelism=cbor.field_int(kdf, "parallelism", _WHAT),
            ),
            salt=cbor.field_bytes(fields, "salt", _WHAT),
            passphrase_wrap=cbor.field_bytes(fields, "passphrase_wrap", _WHAT),
            recovery_wrap=cbor.field_bytes(fields, "recovery_wrap", _WHAT),
        )


class UnlockedVault:
    """K_vault in memory, with the sub-keys derived from it; ``lock()`` drops them all."""

    __slots__ = ("_aeads", "_key", "_locked", "_subkeys", "store_id", "vault_id")

    def __init__(self, *, vault_id: str, store_id: str, vault_key: bytes) -> None:
        """Hold ``vault_key`` (32 bytes) for the vault ``vault_id`` of store ``store_id``."""
        if len(vault_key) != VAULT_KEY_SIZE:
            raise CryptoError("a vault key is 32 bytes")
        self.vault_id = vault_id
        self.store_id = store_id
        self._key = bytearray(vault_key)
        self._locked = False
        self._subkeys: dict[str, bytes] = {}
        self._aeads: dict[str, Aead] = {}

    def __repr__(self) -> str:
        state = "locked" if self._locked else "unlocked"
        return f"UnlockedVault(vault_id={self.vault_id!r}, store_id={self.store_id!r}, {state})"

    def __reduce__(self) -> NoReturn:
        # Pickling would write K_vault to disk or a pipe in the clear (INV-014).
        raise TypeError("an unlocked vault cannot be pickled")

    @property
    def locked(self) -> bool:
        """True once ``lock()`` was called."""
        return self._locked

    def _root(self) -> bytes:
        if self._locked:
            raise VaultLocked
        return bytes(self._key)

    def _derived(self, purpose: str) -> bytes:
        if self._locked:
            raise VaultLocked
        key = self._subkeys.get(purpose)
        if key is None:
            info = b"mo." + purpose.encode("ascii") + b".v1"
            key = self._subkeys[purpose] = hkdf_sha256(self._root(), info)
        return key

    def _aead(self, purpose: str) -> Aead:
        if self._locked:
            raise VaultLocked
        aead = self._aeads.get(purpose)
        if aead is None:
            aead = self._aeads[purpose] = Aead(self._derived(purpose))
        return aead

    def subkey(self, purpose: str) -> bytes:
        """HKDF(K_vault, "mo.<purpose>.v1"), e.g. purpose "idempotency" or "remote"."""
        if not _PURPOSE.fullmatch(purpose) or purpose in _RESERVED_PURPOSES:
            raise CryptoError("invalid or reserved sub-key purpose")
        return self._derived(purpose)

    def aead(self, purpose: str) -> Aead:
        """A cached AES-GCM cipher under ``subkey(purpose)``; it is closed by ``lock()``."""
        self.subkey(purpose)  # validates the purpose
        return self._aead(purpose)

    def stream_key(self) -> bytes:
        """K_stream = HKDF(K_vault, "mo.stream.v1"): seals record headers."""
        return self.subkey("stream")

    def stream_aead(self) -> Aead:
        """The cached AES-GCM cipher under K_stream (record headers); closed by ``lock()``."""
        return self._aead("stream")

    def cache_key(self) -> bytes:
        """HKDF(K_vault, "mo.cache.v1"): seals derived state on this device only."""
        return self.subkey("cache")

    def wrap_dek(self, dek_bytes: bytes, aad: bytes) -> bytes:
        """Seal a 32-byte DEK under the vault's DEK-wrapping key, bound to ``aad``."""
        if len(dek_bytes) != DEK_SIZE:
            raise CryptoError("a DEK is 32 bytes")
        return self._aead("dek-wrap").seal(dek_bytes, aad)

    def unwrap_dek(self, blob: bytes, aad: bytes) -> bytes:
        """Open a ``wrap_dek`` blob; AuthenticationFailed if it or ``aad`` was altered."""
        key = self._aead("dek-wrap").open(blob, aad)
        if len(key) != DEK_SIZE:
            raise EncodingError("a wrapped DEK has the wrong size")
        return key

    def lock(self) -> None:
        """Overwrite K_vault, close every derived cipher and forget every sub-key."""
        for i in range(len(self._key)):
            self._key[i] = 0
        for aead in self._aeads.values():
            aead.close()
        self._aeads.clear()
        self._subkeys.clear()
        self._locked = True


@dataclass(frozen=True)
class NewVault:
    """A freshly created vault: its header, the unlocked vault and the recovery key to show once."""

    header: VaultHeader
    vault: UnlockedVault
    recovery_key: str = field(repr=False)


def _passphrase_aad(
    format_version: int, store_id: str, vault_id: str, kdf: KdfParams, salt: bytes
) -> bytes:
    return cbor.encode(
        {
            "v": format_version,
            "purpose": "passphrase",
            "store_id": store_id,
            "vault_id": vault_id,
            "kdf": {
                "memory_kib": kdf.memory_kib,
                "iterations": kdf.iterations,
                "parallelism": kdf.parallelism,
            },
            "salt": salt,
        }
    )


def _recovery_aad(format_version: int, store_id: str, vault_id: str) -> bytes:
    return cbor.encode(
        {"v": format_version, "purpose": "recovery", "store_id": store_id, "vault_id": vault_id}
    )


def _check_new_passphrase(passphrase: str, kdf: KdfParams) -> None:
    if not passphrase:
        raise CryptoError("the passphrase must not be empty")
    check_creation_floor(kdf)
    if not within_bounds(kdf):
        raise CryptoError("KDF parameters are out of range")


def _passphrase_wrap(
    vault_key: bytes, passphrase: str, store_id: str, vault_id: str, kdf: KdfParams
) -> tuple[bytes, bytes]:
    salt = random_bytes(SALT_SIZE)
    kek = derive_kek(passphrase, salt, kdf)
    aad = _passphrase_aad(VAULT_FORMAT, store_id, vault_id, kdf, salt)
    return salt, Aead(kek).seal(vault_key, aad)


def _recovery_wrap(vault_key: bytes, store_id: str, vault_id: str) -> tuple[bytes, str]:
    raw = random_bytes(VAULT_KEY_SIZE)
    wrapping_key = hkdf_sha256(raw, _RECOVERY_WRAP_INFO)
    wrap = Aead(wrapping_key).seal(vault_key, _recovery_aad(VAULT_FORMAT, store_id, vault_id))
    return wrap, format_recovery_key(raw)


def create_vault(store_id: str, passphrase: str, kdf: KdfParams = DEFAULT_KDF) -> NewVault:
    """Create a vault for ``store_id``: random K_vault and vault id, revision 1."""
    _check_new_passphrase(passphrase, kdf)
    _check_id(store_id, "store_id")
    vault_id = str(uuid.uuid4())
    vault_key = random_bytes(VAULT_KEY_SIZE)
    salt, passphrase_wrap = _passphrase_wrap(vault_key, passphrase, store_id, vault_id, kdf)
    recovery_wrap, recovery_key = _recovery_wrap(vault_key, store_id, vault_id)
    header = VaultHeader(
        format_version=VAULT_FORMAT,
        vault_id=vault_id,
        store_id=store_id,
        revision=1,
        kdf=kdf,
        salt=salt,
        passphrase_wrap=passphrase_wrap,
        recovery_wrap=recovery_wrap,
    )
    vault = UnlockedVault(vault_id=vault_id, store_id=store_id, vault_key=vault_key)
    return NewVault(header=header, vault=vault, recovery_key=recovery_key)


def _open_wrap(wrapping_key: bytes, blob: bytes, aad: bytes) -> bytes | None:
    try:
        return Aead(wrapping_key).open(blob, aad)
    except AuthenticationFailed:
        return None


def unlock_with_passphrase(header: VaultHeader, passphrase: str) -> UnlockedVault:
    """Unlock with the passphrase; UnlockFailed if it is wrong or the header was altered."""
    kek = derive_kek(passphrase, header.salt, header.kdf)
    aad = _passphrase_aad(
        header.format_version, header.store_id, header.vault_id, header.kdf, header.salt
    )
    vault_key = _open_wrap(kek, header.passphrase_wrap, aad)
    if vault_key is None:
        raise UnlockFailed(_UNLOCK_FAILED)
    return UnlockedVault(vault_id=header.vault_id, store_id=header.store_id, vault_key=vault_key)


def unlock_with_recovery_key(header: VaultHeader, recovery_key: str) -> UnlockedVault:
    """Unlock with the recovery key text; RecoveryKeyFormatError on a typo, else UnlockFailed."""
    raw = parse_recovery_key(recovery_key)
    aad = _recovery_aad(header.format_version, header.store_id, header.vault_id)
    vault_key = _open_wrap(hkdf_sha256(raw, _RECOVERY_WRAP_INFO), header.recovery_wrap, aad)
    if vault_key is None:
        raise UnlockFailed(_UNLOCK_FAILED)
    return UnlockedVault(vault_id=header.vault_id, store_id=header.store_id, vault_key=vault_key)


def _check_belongs(header: VaultHeader, vault: UnlockedVault) -> bytes:
    if vault.vault_id != header.vault_id or vault.store_id != header.store_id:
        raise CryptoError("the unlocked vault does not belong to this vault header")
    # A private method, but this module owns UnlockedVault.
    return vault._root()


def change_passphrase(
    header: VaultHeader,
    vault: UnlockedVault,
    new_passphrase: str,
    kdf: KdfParams | None = None,
) -> VaultHeader:
    """Re-wrap K_vault under a new passphrase (new salt, optional new KDF); revision + 1."""
    params = header.kdf if kdf is None else kdf
    _check_new_passphrase(new_passphrase, params)
    vault_key = _check_belongs(header, vault)
    salt, wrap = _passphrase_wrap(
        vault_key, new_passphrase, header.store_id, header.vault_id, params
    )
    return replace(
        header, revision=header.revision + 1, kdf=params, salt=salt, passphrase_wrap=wrap
    )


def rotate_recovery_key(header: VaultHeader, vault: UnlockedVault) -> tuple[VaultHeader, str]:
    """Replace the recovery wrap with one under a new recovery key; revision + 1."""
    vault_key = _check_belongs(header, vault)
    wrap, recovery_key = _recovery_wrap(vault_key, header.store_id, header.vault_id)
    return replace(header, revision=header.revision + 1, recovery_wrap=wrap), recovery_key
