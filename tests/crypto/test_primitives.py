"""AES-256-GCM, HKDF-SHA256 and Argon2id wrappers, checked against known answers."""

from __future__ import annotations

import pytest
from Crypto.Cipher import AES  # pycryptodome: an independent AES-GCM implementation

from mo_local.crypto.errors import AuthenticationFailed, CryptoError
from mo_local.crypto.primitives import (
    AEAD_OVERHEAD,
    NONCE_SIZE,
    TAG_SIZE,
    Aead,
    argon2id,
    hkdf_sha256,
    random_bytes,
    sha256,
)

KEY = bytes(range(32))


def test_aead_round_trip_and_blob_layout() -> None:
    aead = Aead(KEY)
    blob = aead.seal(b"hello", b"aad")
    assert len(blob) == NONCE_SIZE + 5 + TAG_SIZE == 5 + AEAD_OVERHEAD
    assert aead.open(blob, b"aad") == b"hello"


def test_aead_blob_is_nonce_ciphertext_tag_for_an_independent_implementation() -> None:
    blob = Aead(KEY).seal(b"interoperable", b"context")
    nonce, ciphertext, tag = blob[:12], blob[12:-16], blob[-16:]
    cipher = AES.new(KEY, AES.MODE_GCM, nonce=nonce)
    cipher.update(b"context")
    assert cipher.decrypt_and_verify(ciphertext, tag) == b"interoperable"


def test_aead_uses_a_fresh_nonce_per_seal() -> None:
    aead = Aead(KEY)
    nonces = {aead.seal(b"same", b"same")[:NONCE_SIZE] for _ in range(200)}
    assert len(nonces) == 200


@pytest.mark.parametrize(
    "mutate",
    [
        lambda blob, aad: (blob, aad + b"x"),
        lambda blob, aad: (blob[:-1] + bytes([blob[-1] ^ 1]), aad),
        lambda blob, aad: (bytes([blob[0] ^ 0x80]) + blob[1:], aad),
        lambda blob, aad: (blob[: NONCE_SIZE + 2], aad),
        lambda blob, aad: (b"", aad),
    ],
    ids=["aad", "tag-bit", "nonce-bit", "truncated", "empty"],
)
def test_aead_open_refuses_any_change(mutate: object) -> None:
    aead = Aead(KEY)
    blob, aad = mutate(aead.seal(b"payload", b"aad"), b"aad")  # type: ignore[operator]
    with pytest.raises(AuthenticationFailed):
        aead.open(blob, aad)


def test_aead_wrong_key_fails() -> None:
    blob = Aead(KEY).seal(b"payload", b"")
    with pytest.raises(AuthenticationFailed):
        Aead(bytes(32)).open(blob, b"")


def test_aead_requires_a_256_bit_key() -> None:
    with pytest.raises(CryptoError):
        Aead(bytes(16))


def test_aead_closed_cannot_be_used() -> None:
    aead = Aead(KEY)
    blob = aead.seal(b"x", b"")
    aead.close()
    assert aead.closed
    with pytest.raises(CryptoError):
        aead.open(blob, b"")
    with pytest.raises(CryptoError):
        aead.seal(b"x", b"")
    assert repr(KEY) not in repr(aead) and KEY.hex() not in repr(aead)


def test_hkdf_matches_rfc5869_test_case_3() -> None:
    # RFC 5869 A.3: zero-length salt and info (a missing salt is the same as an empty one).
    okm = hkdf_sha256(b"\x0b" * 22, b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_hkdf_separates_by_info() -> None:
    assert hkdf_sha256(KEY, b"mo.stream.v1") != hkdf_sha256(KEY, b"mo.cache.v1")
    assert len(hkdf_sha256(KEY, b"x")) == 32


def test_argon2id_matches_reference_vector() -> None:
    # phc-winner-argon2 test vector: Argon2id v=0x13, m=64 MiB, t=2, p=1.
    digest = argon2id(b"password", b"somesalt", memory_kib=65536, iterations=2, parallelism=1)
    assert digest.hex() == "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"


def test_argon2id_bad_parameters_raise_crypto_error() -> None:
    with pytest.raises(CryptoError):
        argon2id(b"pw", b"short", memory_kib=8192, iterations=1, parallelism=1)


def test_random_bytes_and_sha256() -> None:
    assert len(random_bytes(24)) == 24
    assert random_bytes(32) != random_bytes(32)
    assert sha256(b"abc").hex().startswith("ba7816bf8f01cfea")
    with pytest.raises(CryptoError):
        random_bytes(-1)
