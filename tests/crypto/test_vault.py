"""The vault: create, unlock, change passphrase, recovery, header format, lock."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import replace

import pytest

from mo_local.crypto import cbor
from mo_local.crypto.errors import (
    AuthenticationFailed,
    CryptoError,
    EncodingError,
    RecoveryKeyFormatError,
    UnlockFailed,
    VaultLocked,
    WeakKdfParameters,
)
from mo_local.crypto.kdf import DEFAULT_KDF, KdfParams
from mo_local.crypto.primitives import Aead
from mo_local.crypto.recovery import format_recovery_key
from mo_local.crypto.vault import (
    VAULT_FORMAT,
    NewVault,
    UnlockedVault,
    VaultHeader,
    change_passphrase,
    create_vault,
    rotate_recovery_key,
    unlock_with_passphrase,
    unlock_with_recovery_key,
)

from .conftest import FAST_KDF, PASSPHRASE, STORE_ID


def same_root(a: UnlockedVault, b: UnlockedVault) -> bool:
    """Same K_vault, shown through derived keys (K_vault itself is not exposed)."""
    return a.stream_key() == b.stream_key() and a.cache_key() == b.cache_key()


def test_create_then_unlock_with_passphrase(new_vault: NewVault) -> None:
    header = new_vault.header
    assert header.format_version == VAULT_FORMAT
    assert header.store_id == STORE_ID and header.revision == 1 and header.kdf == FAST_KDF
    assert len(header.salt) == 16
    unlocked = unlock_with_passphrase(header, PASSPHRASE)
    assert (unlocked.vault_id, unlocked.store_id) == (header.vault_id, STORE_ID)
    assert same_root(unlocked, new_vault.vault)


def test_create_then_unlock_with_recovery_key(new_vault: NewVault) -> None:
    unlocked = unlock_with_recovery_key(new_vault.header, new_vault.recovery_key)
    assert same_root(unlocked, new_vault.vault)
    lenient = new_vault.recovery_key.lower().replace("-", " ")
    assert same_root(unlock_with_recovery_key(new_vault.header, lenient), new_vault.vault)


def test_each_vault_is_random() -> None:
    a = create_vault(STORE_ID, PASSPHRASE, FAST_KDF)
    b = create_vault(STORE_ID, PASSPHRASE, FAST_KDF)
    assert a.header.vault_id != b.header.vault_id
    assert a.header.salt != b.header.salt
    assert a.recovery_key != b.recovery_key
    assert not same_root(a.vault, b.vault)


def test_wrong_passphrase_fails_generically(new_vault: NewVault) -> None:
    with pytest.raises(UnlockFailed) as info:
        unlock_with_passphrase(new_vault.header, "correct horse battery stapler")
    assert "stapler" not in str(info.value) and "horse" not in str(info.value)
    assert info.value.__context__ is None


def test_wrong_recovery_key_fails(new_vault: NewVault) -> None:
    other = format_recovery_key(bytes(32))  # well-formed, but not this vault's
    with pytest.raises(UnlockFailed) as info:
        unlock_with_recovery_key(new_vault.header, other)
    assert not isinstance(info.value, RecoveryKeyFormatError)


def test_recovery_key_typo_is_reported_as_format_error(new_vault: NewVault) -> None:
    text = new_vault.recovery_key
    typo = ("1" if text[0] != "1" else "2") + text[1:]
    with pytest.raises(RecoveryKeyFormatError):
        unlock_with_recovery_key(new_vault.header, typo)


def test_change_passphrase_keeps_k_vault_and_data(new_vault: NewVault) -> None:
    sealed_before = new_vault.vault.aead("cache").seal(b"derived state", b"ctx")
    header2 = change_passphrase(new_vault.header, new_vault.vault, "a new passphrase")
    assert header2.revision == new_vault.header.revision + 1
    assert header2.salt != new_vault.header.salt
    assert header2.recovery_wrap == new_vault.header.recovery_wrap
    with pytest.raises(UnlockFailed):
        unlock_with_passphrase(header2, PASSPHRASE)
    unlocked = unlock_with_passphrase(header2, "a new passphrase")
    assert same_root(unlocked, new_vault.vault)
    assert unlocked.aead("cache").open(sealed_before, b"ctx") == b"derived state"
    # The untouched recovery wrap still opens although the revision changed.
    assert same_root(unlock_with_recovery_key(header2, new_vault.recovery_key), unlocked)


def test_change_passphrase_can_raise_kdf_cost(new_vault: NewVault) -> None:
    stronger = KdfParams(16384, 1, 1)
    header2 = change_passphrase(new_vault.header, new_vault.vault, "another one", stronger)
    assert header2.kdf == stronger
    assert same_root(unlock_with_passphrase(header2, "another one"), new_vault.vault)


def test_change_passphrase_enforces_floor_and_non_empty(new_vault: NewVault) -> None:
    with pytest.raises(WeakKdfParameters):
        change_passphrase(new_vault.header, new_vault.vault, "x y z", KdfParams(4096, 1, 1))
    with pytest.raises(CryptoError):
        change_passphrase(new_vault.header, new_vault.vault, "")


def test_change_passphrase_refuses_a_vault_of_another_header(new_vault: NewVault) -> None:
    other = create_vault(STORE_ID, PASSPHRASE, FAST_KDF)
    with pytest.raises(CryptoError):
        change_passphrase(new_vault.header, other.vault, "new passphrase")


def test_recover_with_recovery_key_then_set_new_passphrase(new_vault: NewVault) -> None:
    recovered = unlock_with_recovery_key(new_vault.header, new_vault.recovery_key)
    header2 = change_passphrase(new_vault.header, recovered, "forgot the old one")
    assert same_root(unlock_with_passphrase(header2, "forgot the old one"), new_vault.vault)
    with pytest.raises(UnlockFailed):
        unlock_with_passphrase(header2, PASSPHRASE)


def test_rotate_recovery_key(new_vault: NewVault) -> None:
    header2, recovery2 = rotate_recovery_key(new_vault.header, new_vault.vault)
    assert header2.revision == 2 and recovery2 != new_vault.recovery_key
    assert header2.passphrase_wrap == new_vault.header.passphrase_wrap
    with pytest.raises(UnlockFailed):
        unlock_with_recovery_key(header2, new_vault.recovery_key)
    assert same_root(unlock_with_recovery_key(header2, recovery2), new_vault.vault)
    assert same_root(unlock_with_passphrase(header2, PASSPHRASE), new_vault.vault)


@pytest.mark.parametrize(
    "params",
    [KdfParams(8191, 1, 1), KdfParams(8192, 0, 1), KdfParams(8192, 1, 0)],
    ids=["memory-8191", "iterations-0", "parallelism-0"],
)
def test_creation_floor_is_enforced(params: KdfParams) -> None:
    with pytest.raises(WeakKdfParameters):
        create_vault(STORE_ID, PASSPHRASE, params)


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(CryptoError):
        create_vault(STORE_ID, "", FAST_KDF)


def test_default_kdf_is_used_when_not_given() -> None:
    """The one test that pays for the real default: 64 MiB, t = 3, p = 1."""
    created = create_vault(STORE_ID, PASSPHRASE)
    assert created.header.kdf == DEFAULT_KDF == KdfParams(65536, 3, 1)


def test_header_bytes_round_trip(new_vault: NewVault) -> None:
    data = new_vault.header.to_bytes()
    assert VaultHeader.from_bytes(data) == new_vault.header
    decoded = cbor.decode(data)
    assert isinstance(decoded, dict) and decoded["v"] == VAULT_FORMAT
    assert cbor.encode(decoded) == data  # canonical
    reloaded = VaultHeader.from_bytes(data)
    assert same_root(unlock_with_passphrase(reloaded, PASSPHRASE), new_vault.vault)


def _fields(header: VaultHeader) -> dict[str, object]:
    decoded = cbor.decode(header.to_bytes())
    assert isinstance(decoded, dict)
    return decoded


@pytest.mark.parametrize(
    "mutate",
    [
        lambda f: f.update(v=2),
        lambda f: f.pop("salt"),
        lambda f: f.update(extra=1),
        lambda f: f.update(revision=True),
        lambda f: f.update(revision=0),
        lambda f: f.update(salt=b"short"),
        lambda f: f.update(store_id=7),
        lambda f: f.update(store_id=""),
        lambda f: f.update(passphrase_wrap=b"x" * 10),
        lambda f: f.update(kdf={"memory_kib": 1 << 40, "iterations": 1, "parallelism": 1}),
        lambda f: f.update(kdf={"memory_kib": 8192, "iterations": 1}),
        lambda f: f.update(kdf=[8192, 1, 1]),
    ],
    ids=[
        "version",
        "missing",
        "extra",
        "bool",
        "revision-0",
        "salt",
        "id-type",
        "id-empty",
        "wrap-size",
        "kdf-huge",
        "kdf-missing",
        "kdf-list",
    ],
)
def test_header_from_bytes_refuses_bad_structure(new_vault: NewVault, mutate: object) -> None:
    fields = _fields(new_vault.header)
    mutate(fields)  # type: ignore[operator]
    with pytest.raises(EncodingError):
        VaultHeader.from_bytes(cbor.encode(fields))


@pytest.mark.parametrize("data", [b"", b"\x00", b"garbage", b"\xa0", cbor.encode([1, 2])])
def test_header_from_bytes_refuses_garbage(data: bytes) -> None:
    with pytest.raises(EncodingError):
        VaultHeader.from_bytes(data)


def test_unknown_header_version_is_named() -> None:
    with pytest.raises(EncodingError, match="unsupported"):
        VaultHeader.from_bytes(cbor.encode({"v": 2, "anything": "else"}))


@pytest.mark.parametrize(
    "field_change",
    [
        {"kdf": KdfParams(16384, 1, 1)},
        {"kdf": KdfParams(8192, 2, 1)},
        {"store_id": "another-store"},
        {"vault_id": "00000000-0000-4000-8000-000000000000"},
        {"salt": bytes(16)},
    ],
    ids=["kdf-memory", "kdf-iterations", "store_id", "vault_id", "salt"],
)
def test_tampered_header_does_not_unlock_with_passphrase(
    new_vault: NewVault, field_change: dict[str, object]
) -> None:
    tampered = replace(new_vault.header, **field_change)  # type: ignore[arg-type]
    with pytest.raises(UnlockFailed):
        unlock_with_passphrase(tampered, PASSPHRASE)


@pytest.mark.parametrize(
    "field_change",
    [{"store_id": "another-store"}, {"vault_id": "00000000-0000-4000-8000-000000000000"}],
    ids=["store_id", "vault_id"],
)
def test_tampered_header_does_not_unlock_with_recovery_key(
    new_vault: NewVault, field_change: dict[str, object]
) -> None:
    tampered = replace(new_vault.header, **field_change)  # type: ignore[arg-type]
    with pytest.raises(UnlockFailed):
        unlock_with_recovery_key(tampered, new_vault.recovery_key)


def test_swapped_wraps_do_not_unlock(new_vault: NewVault) -> None:
    h = new_vault.header
    swapped = replace(h, passphrase_wrap=h.recovery_wrap, recovery_wrap=h.passphrase_wrap)
    with pytest.raises(UnlockFailed):
        unlock_with_passphrase(swapped, PASSPHRASE)
    with pytest.raises(UnlockFailed):
        unlock_with_recovery_key(swapped, new_vault.recovery_key)


def test_wrap_from_another_vault_with_the_same_passphrase_does_not_unlock(
    new_vault: NewVault,
) -> None:
    other = create_vault(STORE_ID, PASSPHRASE, FAST_KDF).header
    transplanted = replace(new_vault.header, salt=other.salt, passphrase_wrap=other.passphrase_wrap)
    with pytest.raises(UnlockFailed):
        unlock_with_passphrase(transplanted, PASSPHRASE)


def test_revision_is_not_bound_by_the_wraps(new_vault: NewVault) -> None:
    """Documented choice: re-wrapping one wrap must leave the other valid, so the
    revision stays out of the AAD; rollback is the sync layer's job."""
    bumped = replace(new_vault.header, revision=41)
    assert same_root(unlock_with_passphrase(bumped, PASSPHRASE), new_vault.vault)


def test_subkeys(new_vault: NewVault) -> None:
    vault = new_vault.vault
    keys = {
        vault.stream_key(),
        vault.cache_key(),
        vault.subkey("idempotency"),
        vault.subkey("remote"),
    }
    assert len(keys) == 4 and all(len(k) == 32 for k in keys)
    assert vault.subkey("stream") == vault.stream_key()
    again = unlock_with_passphrase(new_vault.header, PASSPHRASE)
    assert again.subkey("idempotency") == vault.subkey("idempotency")
    for bad in ("dek-wrap", "recovery-wrap", "", "Upper", "a.b", "x" * 40):
        with pytest.raises(CryptoError):
            vault.subkey(bad)


def test_wrap_and_unwrap_dek(new_vault: NewVault) -> None:
    vault = new_vault.vault
    dek = bytes(range(32))
    blob = vault.wrap_dek(dek, b"aad")
    assert vault.unwrap_dek(blob, b"aad") == dek
    with pytest.raises(AuthenticationFailed):
        vault.unwrap_dek(blob, b"other aad")
    other = create_vault(STORE_ID, PASSPHRASE, FAST_KDF).vault
    with pytest.raises(AuthenticationFailed):
        other.unwrap_dek(blob, b"aad")
    with pytest.raises(CryptoError):
        vault.wrap_dek(b"short", b"aad")


def test_lock_drops_every_key(new_vault: NewVault) -> None:
    vault = new_vault.vault
    stream = vault.stream_aead()
    cache = vault.aead("cache")
    blob = vault.wrap_dek(bytes(32), b"aad")
    vault.lock()
    assert vault.locked
    assert bytes(vault._key) == bytes(32)  # overwritten in place, not just dropped
    uses: list[Callable[[], object]] = [
        vault.stream_key,
        vault.cache_key,
        lambda: vault.subkey("remote"),
        vault.stream_aead,
        lambda: vault.aead("cache"),
        lambda: vault.wrap_dek(bytes(32), b"aad"),
        lambda: vault.unwrap_dek(blob, b"aad"),
        lambda: change_passphrase(new_vault.header, vault, "new one"),
        lambda: rotate_recovery_key(new_vault.header, vault),
    ]
    for use in uses:
        with pytest.raises(VaultLocked, match="vault is locked"):
            use()
    # Ciphers handed out before the lock are closed too.
    for aead in (stream, cache):
        with pytest.raises(CryptoError):
            aead.seal(b"x", b"")
    vault.lock()  # idempotent


def test_reprs_show_no_key_material(new_vault: NewVault) -> None:
    vault = new_vault.vault
    secrets = [vault.stream_key(), vault.cache_key(), bytes(vault._key)]
    texts = [repr(vault), str(vault), repr(new_vault), repr(vault.stream_aead())]
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text and repr(secret) not in text
        assert new_vault.recovery_key not in text
        assert new_vault.recovery_key.split("-")[0] not in repr(new_vault)


def test_unlocked_vault_cannot_be_pickled(new_vault: NewVault) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(new_vault.vault)


def test_unlocked_vault_requires_a_32_byte_key() -> None:
    with pytest.raises(CryptoError):
        UnlockedVault(vault_id="v", store_id="s", vault_key=bytes(16))


def test_wrap_aad_binds_the_documented_fields(new_vault: NewVault) -> None:
    """The passphrase wrap opens under exactly the documented AAD."""
    from mo_local.crypto.kdf import derive_kek

    h = new_vault.header
    aad = cbor.encode(
        {
            "v": 1,
            "purpose": "passphrase",
            "store_id": h.store_id,
            "vault_id": h.vault_id,
            "kdf": {"memory_kib": 8192, "iterations": 1, "parallelism": 1},
            "salt": h.salt,
        }
    )
    kek = derive_kek(PASSPHRASE, h.salt, h.kdf)
    assert len(Aead(kek).open(h.passphrase_wrap, aad)) == 32
