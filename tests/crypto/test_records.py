"""Records (DESIGN.md §5): sealing, opening, and INV-013 — every ciphertext is bound
by AAD to its store, event, aggregate, version and key."""

from __future__ import annotations

import pickle
import uuid
from dataclasses import replace

import pytest

from mo_local.crypto import cbor
from mo_local.crypto.errors import AuthenticationFailed, CryptoError, EncodingError, VaultLocked
from mo_local.crypto.padding import padme
from mo_local.crypto.primitives import AEAD_OVERHEAD
from mo_local.crypto.records import (
    HEADER_PLAINTEXT_SIZE,
    KIND_EVENT,
    KIND_KEY,
    MAX_LABEL_BYTES,
    RECORD_FORMAT,
    Dek,
    RecordHeader,
    _header_aad,
    _payload_aad,
    new_dek,
    open_event_payload,
    open_header,
    open_key_record,
    record_size_ok,
    seal_event_record,
    seal_key_record,
)
from mo_local.crypto.vault import NewVault, UnlockedVault, create_vault

from .conftest import FAST_KDF, PASSPHRASE, STORE_ID

AGGREGATE_ID = "3f1c8a5e-1111-4222-8333-444455556666"
EVENT_ID = "9e2d7c4b-aaaa-4bbb-8ccc-dddddddddddd"
ENVELOPE = cbor.encode({"type": "GoalCreated", "data": {"summary": "Run a marathon"}})

AAD_FIELDS = ["store_id", "event_id", "kind", "aggregate_type", "aggregate_id", "version", "key_id"]
# A different value for each field, used to move a ciphertext along exactly one axis.
OTHER = {
    "store_id": "another-store",
    "event_id": "00000000-0000-4000-8000-000000000001",
    "aggregate_type": "project",
    "aggregate_id": "00000000-0000-4000-8000-000000000002",
    "version": 8,
    "key_id": "00000000-0000-4000-8000-000000000003",
}


@pytest.fixture
def vault(new_vault: NewVault) -> UnlockedVault:
    return new_vault.vault


@pytest.fixture
def dek() -> Dek:
    return new_dek()


def event_header(dek: Dek, **changes: object) -> RecordHeader:
    header = RecordHeader(KIND_EVENT, "goal", AGGREGATE_ID, 7, dek.key_id)
    return replace(header, **changes)  # type: ignore[arg-type]


def split(record: bytes) -> dict[str, object]:
    value = cbor.decode(record)
    assert isinstance(value, dict)
    return value


def join(h: object, p: object) -> bytes:
    return cbor.encode({"v": RECORD_FORMAT, "h": h, "p": p})


def test_event_record_round_trip(vault: UnlockedVault, dek: Dek) -> None:
    header = event_header(dek)
    record = seal_event_record(vault, STORE_ID, EVENT_ID, header, dek, ENVELOPE)
    opened = open_header(vault, STORE_ID, EVENT_ID, record)
    assert opened == header
    assert open_event_payload(STORE_ID, EVENT_ID, opened, dek, record) == ENVELOPE


def test_key_record_round_trip(vault: UnlockedVault, dek: Dek) -> None:
    record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    header = open_header(vault, STORE_ID, EVENT_ID, record)
    assert header == RecordHeader(KIND_KEY, "goal", AGGREGATE_ID, 0, dek.key_id)
    assert open_key_record(vault, STORE_ID, EVENT_ID, header, record) == dek


def test_any_device_with_k_vault_opens_records(new_vault: NewVault, dek: Dek) -> None:
    """INV-012 at the crypto level: K_vault (from the passphrase) recovers DEKs and events."""
    from mo_local.crypto.vault import unlock_with_passphrase

    key_record = seal_key_record(new_vault.vault, STORE_ID, "k1", "goal", AGGREGATE_ID, dek)
    event = seal_event_record(new_vault.vault, STORE_ID, EVENT_ID, event_header(dek), dek, b"e")
    other_device = unlock_with_passphrase(new_vault.header, PASSPHRASE)
    key_header = open_header(other_device, STORE_ID, "k1", key_record)
    recovered = open_key_record(other_device, STORE_ID, "k1", key_header, key_record)
    header = open_header(other_device, STORE_ID, EVENT_ID, event)
    assert open_event_payload(STORE_ID, EVENT_ID, header, recovered, event) == b"e"


def test_record_is_canonical_cbor_with_v_h_p(vault: UnlockedVault, dek: Dek) -> None:
    record = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    fields = split(record)
    assert set(fields) == {"v", "h", "p"} and fields["v"] == RECORD_FORMAT
    assert cbor.encode(fields) == record
    assert b"GoalCreated" not in record and b"marathon" not in record and b"goal" not in record
    assert AGGREGATE_ID.encode() not in record


def test_aads_are_the_canonical_maps_of_the_design(dek: Dek) -> None:
    header = event_header(dek)
    assert _header_aad(STORE_ID, EVENT_ID) == cbor.encode(
        {"v": 1, "part": "h", "store_id": STORE_ID, "event_id": EVENT_ID}
    )
    assert _payload_aad(STORE_ID, EVENT_ID, header) == cbor.encode(
        {
            "v": 1,
            "part": "p",
            "store_id": STORE_ID,
            "event_id": EVENT_ID,
            "kind": "event",
            "aggregate_type": "goal",
            "aggregate_id": AGGREGATE_ID,
            "version": 7,
            "key_id": dek.key_id,
        }
    )


def test_inv016_header_ciphertext_size_hides_type_ids_and_kind(
    vault: UnlockedVault, dek: Dek
) -> None:
    """INV-016: the header ciphertext has one size whatever it says."""
    sizes = set()
    for aggregate_type, aggregate_id, version in [
        ("goal", AGGREGATE_ID, 1),
        ("project", "p", 123456789),
        ("x" * MAX_LABEL_BYTES, "y" * MAX_LABEL_BYTES, (1 << 63) - 1),
    ]:
        header = RecordHeader(KIND_EVENT, aggregate_type, aggregate_id, version, dek.key_id)
        record = seal_event_record(vault, STORE_ID, EVENT_ID, header, dek, b"")
        sizes.add(len(split(record)["h"]))  # type: ignore[arg-type]
    key_record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    sizes.add(len(split(key_record)["h"]))  # type: ignore[arg-type]
    assert sizes == {HEADER_PLAINTEXT_SIZE + AEAD_OVERHEAD}


def test_payload_sizes_are_padme_buckets(vault: UnlockedVault, dek: Dek) -> None:
    for length in (0, 1, 50, 333, 1000, 5000):
        record = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, b"z" * length)
        payload = split(record)["p"]
        assert isinstance(payload, bytes)
        assert len(payload) == padme(4 + length) + AEAD_OVERHEAD


# --- INV-013: payload ---------------------------------------------------------


def _moved(
    field: str, store_id: str, event_id: str, header: RecordHeader
) -> tuple[str, str, RecordHeader]:
    """Change exactly one AAD-bound field of the opening context."""
    if field == "store_id":
        return OTHER["store_id"], event_id, header  # type: ignore[return-value]
    if field == "event_id":
        return store_id, OTHER["event_id"], header  # type: ignore[return-value]
    if field == "kind":
        flipped = KIND_KEY if header.kind == KIND_EVENT else KIND_EVENT
        return store_id, event_id, replace(header, kind=flipped)
    return store_id, event_id, replace(header, **{field: OTHER[field]})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", AAD_FIELDS)
def test_inv013_event_payload_is_bound_to_each_field(
    vault: UnlockedVault, dek: Dek, field: str
) -> None:
    header = event_header(dek)
    record = seal_event_record(vault, STORE_ID, EVENT_ID, header, dek, ENVELOPE)
    assert open_event_payload(STORE_ID, EVENT_ID, header, dek, record) == ENVELOPE
    store_id, event_id, moved = _moved(field, STORE_ID, EVENT_ID, header)
    with pytest.raises(AuthenticationFailed):
        open_event_payload(store_id, event_id, moved, dek, record)


@pytest.mark.parametrize("field", AAD_FIELDS)
def test_inv013_key_record_payload_is_bound_to_each_field(
    vault: UnlockedVault, dek: Dek, field: str
) -> None:
    record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    header = open_header(vault, STORE_ID, EVENT_ID, record)
    store_id, event_id, moved = _moved(field, STORE_ID, EVENT_ID, header)
    with pytest.raises(AuthenticationFailed):
        open_key_record(vault, store_id, event_id, moved, record)


# --- INV-013: header ----------------------------------------------------------


@pytest.mark.parametrize("field", ["store_id", "event_id"])
def test_inv013_header_is_bound_to_store_and_event(
    vault: UnlockedVault, dek: Dek, field: str
) -> None:
    record = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    store_id, event_id, _ = _moved(field, STORE_ID, EVENT_ID, event_header(dek))
    with pytest.raises(AuthenticationFailed):
        open_header(vault, store_id, event_id, record)


@pytest.mark.parametrize("field", ["aggregate_type", "aggregate_id", "version", "key_id"])
def test_inv013_header_of_another_record_cannot_be_substituted(
    vault: UnlockedVault, dek: Dek, field: str
) -> None:
    """The header AAD binds store and event id; the other fields live inside the header.
    A header taken from a record (same store and event id) that differs only in
    ``field`` opens, but then the payload no longer authenticates."""
    original = event_header(dek)
    other_dek = Dek(key_id=str(OTHER["key_id"]), key=bytes(32)) if field == "key_id" else dek
    other = replace(original, **{field: OTHER[field]})  # type: ignore[arg-type]
    record_a = seal_event_record(vault, STORE_ID, EVENT_ID, original, dek, ENVELOPE)
    record_b = seal_event_record(vault, STORE_ID, EVENT_ID, other, other_dek, ENVELOPE)
    spliced = join(split(record_b)["h"], split(record_a)["p"])
    substituted = open_header(vault, STORE_ID, EVENT_ID, spliced)
    assert substituted == other
    for candidate in {dek, other_dek}:
        with pytest.raises(AuthenticationFailed):
            open_event_payload(STORE_ID, EVENT_ID, substituted, candidate, spliced)


def test_inv013_header_kind_cannot_be_substituted(vault: UnlockedVault, dek: Dek) -> None:
    """A key record's header (kind "key", hence version 0) spliced onto an event's payload."""
    event = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    key_record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    spliced = join(split(key_record)["h"], split(event)["p"])
    header = open_header(vault, STORE_ID, EVENT_ID, spliced)
    assert header.kind == KIND_KEY
    with pytest.raises(AuthenticationFailed):
        open_key_record(vault, STORE_ID, EVENT_ID, header, spliced)
    with pytest.raises(AuthenticationFailed):
        open_event_payload(STORE_ID, EVENT_ID, header, dek, spliced)
    # And the other way round: an event's header on a key record's payload.
    spliced = join(split(event)["h"], split(key_record)["p"])
    header = open_header(vault, STORE_ID, EVENT_ID, spliced)
    with pytest.raises(AuthenticationFailed):
        open_key_record(vault, STORE_ID, EVENT_ID, header, spliced)


def test_inv013_swapping_header_and_payload_fails(vault: UnlockedVault, dek: Dek) -> None:
    header = event_header(dek)
    record = seal_event_record(vault, STORE_ID, EVENT_ID, header, dek, ENVELOPE)
    fields = split(record)
    swapped = join(fields["p"], fields["h"])
    with pytest.raises(AuthenticationFailed):
        open_header(vault, STORE_ID, EVENT_ID, swapped)
    with pytest.raises(AuthenticationFailed):
        open_event_payload(STORE_ID, EVENT_ID, header, dek, swapped)


def test_inv013_swapping_parts_between_records_fails(vault: UnlockedVault, dek: Dek) -> None:
    header_1, header_2 = event_header(dek, version=1), event_header(dek, version=2)
    record_1 = seal_event_record(vault, STORE_ID, "event-1", header_1, dek, b"one")
    record_2 = seal_event_record(vault, STORE_ID, "event-2", header_2, dek, b"two")
    h_from_2 = join(split(record_2)["h"], split(record_1)["p"])
    with pytest.raises(AuthenticationFailed):
        open_header(vault, STORE_ID, "event-1", h_from_2)
    p_from_2 = join(split(record_1)["h"], split(record_2)["p"])
    with pytest.raises(AuthenticationFailed):
        open_event_payload(STORE_ID, "event-1", header_1, dek, p_from_2)


def test_inv013_a_bit_flip_anywhere_fails(vault: UnlockedVault, dek: Dek) -> None:
    header = event_header(dek)
    record = seal_event_record(vault, STORE_ID, EVENT_ID, header, dek, ENVELOPE)
    for position in range(len(record)):
        for bit in (0x01, 0x80):
            flipped = bytearray(record)
            flipped[position] ^= bit
            tampered = bytes(flipped)
            with pytest.raises((EncodingError, AuthenticationFailed)):
                opened = open_header(vault, STORE_ID, EVENT_ID, tampered)
                open_event_payload(STORE_ID, EVENT_ID, opened, dek, tampered)


def test_inv013_key_record_moved_to_another_aggregate_fails(vault: UnlockedVault, dek: Dek) -> None:
    key_record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    decoy = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", str(OTHER["aggregate_id"]), dek)
    # The wrapped DEK spliced under a header that names another aggregate.
    spliced = join(split(decoy)["h"], split(key_record)["p"])
    header = open_header(vault, STORE_ID, EVENT_ID, spliced)
    assert header.aggregate_id == OTHER["aggregate_id"]
    with pytest.raises(AuthenticationFailed):
        open_key_record(vault, STORE_ID, EVENT_ID, header, spliced)


def test_records_of_another_vault_do_not_open(vault: UnlockedVault, dek: Dek) -> None:
    other = create_vault(STORE_ID, PASSPHRASE, FAST_KDF).vault
    event = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    key_record = seal_key_record(vault, STORE_ID, "k", "goal", AGGREGATE_ID, dek)
    with pytest.raises(AuthenticationFailed):
        open_header(other, STORE_ID, EVENT_ID, event)
    with pytest.raises(AuthenticationFailed):
        open_key_record(
            other, STORE_ID, "k", open_header(vault, STORE_ID, "k", key_record), key_record
        )


def test_wrong_dek_fails(vault: UnlockedVault, dek: Dek) -> None:
    record = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    impostor = Dek(key_id=dek.key_id, key=bytes(32))
    with pytest.raises(AuthenticationFailed):
        open_event_payload(STORE_ID, EVENT_ID, event_header(dek), impostor, record)


# --- structure and misuse -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        cbor.encode([1, 2]),
        cbor.encode({"v": 2, "h": b"", "p": b""}),
        cbor.encode({"v": 1, "h": b"", "p": b"", "x": 1}),
        cbor.encode({"v": 1, "h": "text", "p": b""}),
        cbor.encode({"v": True, "h": b"", "p": b""}),
        cbor.encode({"v": 1, "h": b""}),
    ],
    ids=["empty", "int", "list", "version", "extra", "h-type", "v-bool", "missing"],
)
def test_malformed_records_are_encoding_errors(vault: UnlockedVault, dek: Dek, data: bytes) -> None:
    with pytest.raises(EncodingError):
        open_header(vault, STORE_ID, EVENT_ID, data)
    with pytest.raises(EncodingError):
        open_event_payload(STORE_ID, EVENT_ID, event_header(dek), dek, data)


def test_non_canonical_record_is_refused(vault: UnlockedVault, dek: Dek) -> None:
    record = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    with pytest.raises(EncodingError):
        open_header(vault, STORE_ID, EVENT_ID, record + b"\x00")
    assert record.endswith(b"\x61v\x01")
    widened = record[:-1] + b"\x18\x01"  # v = 1 with a non-minimal integer
    with pytest.raises(EncodingError):
        open_header(vault, STORE_ID, EVENT_ID, widened)


def test_sealing_misuse_is_refused(vault: UnlockedVault, dek: Dek) -> None:
    with pytest.raises(CryptoError):
        seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek, kind=KIND_KEY), dek, b"")
    with pytest.raises(CryptoError):
        seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek, key_id="other"), dek, b"")
    with pytest.raises(EncodingError):
        seal_event_record(vault, STORE_ID, uuid.uuid4(), event_header(dek), dek, b"")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "snapshot"},
        {"aggregate_type": ""},
        {"aggregate_id": "x" * (MAX_LABEL_BYTES + 1)},
        {"aggregate_id": "é" * (MAX_LABEL_BYTES // 2 + 1)},
        {"key_id": 5},
        {"version": -1},
        {"version": True},
        {"version": 1 << 63},
    ],
    ids=["kind", "empty-type", "long-id", "long-utf8", "key-type", "negative", "bool", "huge"],
)
def test_record_header_validation(dek: Dek, changes: dict[str, object]) -> None:
    with pytest.raises(EncodingError):
        event_header(dek, **changes)


def test_locked_vault_cannot_seal_or_open(vault: UnlockedVault, dek: Dek) -> None:
    record = seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    key_record = seal_key_record(vault, STORE_ID, "k", "goal", AGGREGATE_ID, dek)
    key_header = open_header(vault, STORE_ID, "k", key_record)
    vault.lock()
    with pytest.raises(VaultLocked):
        open_header(vault, STORE_ID, EVENT_ID, record)
    with pytest.raises(VaultLocked):
        seal_event_record(vault, STORE_ID, EVENT_ID, event_header(dek), dek, ENVELOPE)
    with pytest.raises(VaultLocked):
        open_key_record(vault, STORE_ID, "k", key_header, key_record)


def test_dek_basics() -> None:
    dek = new_dek()
    assert uuid.UUID(dek.key_id).version == 4 and len(dek.key) == 32
    assert new_dek().key != dek.key
    assert dek.key.hex() not in repr(dek) and repr(dek.key) not in repr(dek)
    assert Dek(dek.key_id, dek.key) == dek
    with pytest.raises(CryptoError):
        Dek(key_id="k", key=bytes(16))
    with pytest.raises(TypeError):
        pickle.dumps(dek)


def test_record_size_ok() -> None:
    assert record_size_ok(b"x" * 10, limit=10)
    assert not record_size_ok(b"x" * 11, limit=10)
