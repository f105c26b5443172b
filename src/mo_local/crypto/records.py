"""The record: the unit of sync and the exact bytes stored locally and on the server.

A record is the canonical CBOR map {"v": 1, "h": header ciphertext, "p": payload
ciphertext} (DESIGN.md §5):

- ``h`` = AES-GCM under K_stream of the header {kind, aggregate_type,
  aggregate_id, version, key_id}, with AAD {v, part: "h", store_id, event_id}.
  The header plaintext is padded to a fixed size so that its ciphertext length
  says nothing about the aggregate type, the ids or the kind (INV-016).
- ``p`` = for an event, AES-GCM under the aggregate's DEK of the PADMÉ-padded
  event envelope; for a key record, the DEK wrapped under the vault. AAD {v,
  part: "p", store_id, event_id, kind, aggregate_type, aggregate_id, version,
  key_id}.

So a ciphertext moved to another store, event id, aggregate, version or key id,
or an ``h`` and ``p`` swapped between records (or within one: the ``part``
differs), fails authentication (INV-013). The opening functions do not pre-check
the kind or key id they are given: the AAD is the check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import NoReturn

from mo_local.crypto import cbor
from mo_local.crypto.errors import CryptoError, EncodingError
from mo_local.crypto.padding import pad, pad_fixed, unpad, unpad_fixed
from mo_local.crypto.primitives import Aead, random_bytes
from mo_local.crypto.vault import DEK_SIZE, UnlockedVault

RECORD_FORMAT = 1
KIND_EVENT = "event"
KIND_KEY = "key"
KINDS = frozenset({KIND_EVENT, KIND_KEY})
HEADER_PLAINTEXT_SIZE = 256
MAX_LABEL_BYTES = 48
MAX_RECORD_SIZE = cbor.MAX_SIZE
MAX_VERSION = (1 << 63) - 1

_RECORD_KEYS = frozenset({"v", "h", "p"})
_HEADER_KEYS = frozenset({"kind", "aggregate_type", "aggregate_id", "version", "key_id"})


def _check_label(value: object, name: str) -> None:
    # Bounded so that the largest header still fits HEADER_PLAINTEXT_SIZE.
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_LABEL_BYTES:
        raise EncodingError(f"record header: {name} must be 1 to {MAX_LABEL_BYTES} bytes of text")


@dataclass(frozen=True)
class RecordHeader:
    """What the encrypted record header says: routing and concurrency facts."""

    kind: str
    aggregate_type: str
    aggregate_id: str
    version: int
    key_id: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EncodingError("record header: unknown kind")
        _check_label(self.aggregate_type, "aggregate_type")
        _check_label(self.aggregate_id, "aggregate_id")
        _check_label(self.key_id, "key_id")
        if type(self.version) is not int or not 0 <= self.version <= MAX_VERSION:
            raise EncodingError("record header: version must be a non-negative integer")


@dataclass(frozen=True)
class Dek:
    """A data-encryption key of one aggregate, with its random key id."""

    key_id: str
    key: bytes = field(repr=False)
    # Built once per DEK: constructing the cipher on every open would dominate reads.
    _aead: Aead = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_label(self.key_id, "key_id")
        if len(self.key) != DEK_SIZE:
            raise CryptoError("a DEK is 32 bytes")
        object.__setattr__(self, "_aead", Aead(self.key))

    def __reduce__(self) -> NoReturn:
        # Pickling would write the key in the clear (INV-014).
        raise TypeError("a DEK cannot be pickled")


def new_dek() -> Dek:
    """A fresh random DEK with a random (UUIDv4) key id."""
    return Dek(key_id=str(uuid.uuid4()), key=random_bytes(DEK_SIZE))


# The literal maps below list their keys in canonical CBOR order (shorter first,
# then bytewise) and hold only validated text, bytes and ints, which is what
# cbor.encode_prechecked requires; tests compare them with cbor.encode.


def _check_ids(store_id: str, event_id: str) -> None:
    # Not validated elsewhere on this path; anything but text (a UUID object, say)
    # would make cbor2 emit a tag into the AAD.
    if type(store_id) is not str or type(event_id) is not str:
        raise EncodingError("store id and event id must be text")


def _header_aad(store_id: str, event_id: str) -> bytes:
    _check_ids(store_id, event_id)
    return cbor.encode_prechecked(
        {"v": RECORD_FORMAT, "part": "h", "event_id": event_id, "store_id": store_id}
    )


def _payload_aad(store_id: str, event_id: str, header: RecordHeader) -> bytes:
    _check_ids(store_id, event_id)
    return cbor.encode_prechecked(
        {
            "v": RECORD_FORMAT,
            "kind": header.kind,
            "part": "p",
            "key_id": header.key_id,
            "version": header.version,
            "event_id": event_id,
            "store_id": store_id,
            "aggregate_id": header.aggregate_id,
            "aggregate_type": header.aggregate_type,
        }
    )


def _header_plaintext(header: RecordHeader) -> bytes:
    encoded = cbor.encode_prechecked(
        {
            "kind": header.kind,
            "key_id": header.key_id,
            "version": header.version,
            "aggregate_id": header.aggregate_id,
            "aggregate_type": header.aggregate_type,
        }
    )
    return pad_fixed(encoded, HEADER_PLAINTEXT_SIZE)


def _assemble(
    vault: UnlockedVault,
    store_id: str,
    event_id: str,
    header: RecordHeader,
    payload_ciphertext: bytes,
) -> bytes:
    sealed_header = vault.stream_aead().seal(
        _header_plaintext(header), _header_aad(store_id, event_id)
    )
    return cbor.encode_prechecked({"h": sealed_header, "p": payload_ciphertext, "v": RECORD_FORMAT})


def _split(record: bytes) -> tuple[bytes, bytes]:
    value = cbor.decode(record, max_size=MAX_RECORD_SIZE, max_depth=1)
    if isinstance(value, dict) and "v" in value and value["v"] != RECORD_FORMAT:
        raise EncodingError("record: unsupported format version")
    fields = cbor.expect_map(value, _RECORD_KEYS, "record")
    if cbor.field_int(fields, "v", "record") != RECORD_FORMAT:
        raise EncodingError("record: unsupported format version")
    return cbor.field_bytes(fields, "h", "record"), cbor.field_bytes(fields, "p", "record")


def seal_event_record(
    vault: UnlockedVault,
    store_id: str,
    event_id: str,
    header: RecordHeader,
    dek: Dek,
    envelope: bytes,
) -> bytes:
    """Seal an event: header under K_stream, padded ``envelope`` under ``dek``."""
    if header.kind != KIND_EVENT:
        raise CryptoError("an event record needs a header of kind 'event'")
    if header.key_id != dek.key_id:
        raise CryptoError("the record header names another key than the DEK given")
    payload = dek._aead.seal(pad(envelope), _payload_aad(store_id, event_id, header))
    return _assemble(vault, store_id, event_id, header, payload)


def seal_key_record(
    vault: UnlockedVault,
    store_id: str,
    event_id: str,
    aggregate_type: str,
    aggregate_id: str,
    dek: Dek,
) -> bytes:
    """Seal a key record (kind "key", version 0): ``dek`` wrapped under the vault."""
    header = RecordHeader(
        kind=KIND_KEY,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        version=0,
        key_id=dek.key_id,
    )
    payload = vault.wrap_dek(dek.key, _payload_aad(store_id, event_id, header))
    return _assemble(vault, store_id, event_id, header, payload)


def open_header(vault: UnlockedVault, store_id: str, event_id: str, record: bytes) -> RecordHeader:
    """Decrypt and parse a record's header; AuthenticationFailed if moved or altered."""
    sealed_header, _ = _split(record)
    padded = vault.stream_aead().open(sealed_header, _header_aad(store_id, event_id))
    value = cbor.decode(
        unpad_fixed(padded, HEADER_PLAINTEXT_SIZE), max_size=HEADER_PLAINTEXT_SIZE, max_depth=1
    )
    fields = cbor.expect_map(value, _HEADER_KEYS, "record header")
    return RecordHeader(
        kind=cbor.field_str(fields, "kind", "record header"),
        aggregate_type=cbor.field_str(fields, "aggregate_type", "record header"),
        aggregate_id=cbor.field_str(fields, "aggregate_id", "record header"),
        version=cbor.field_int(fields, "version", "record header"),
        key_id=cbor.field_str(fields, "key_id", "record header"),
    )


def open_event_payload(
    store_id: str, event_id: str, header: RecordHeader, dek: Dek, record: bytes
) -> bytes:
    """Decrypt an event's payload and return the unpadded envelope bytes."""
    _, sealed_payload = _split(record)
    return unpad(dek._aead.open(sealed_payload, _payload_aad(store_id, event_id, header)))


def open_key_record(
    vault: UnlockedVault, store_id: str, event_id: str, header: RecordHeader, record: bytes
) -> Dek:
    """Unwrap the DEK carried by a key record; AuthenticationFailed if moved or altered."""
    _, sealed_payload = _split(record)
    key = vault.unwrap_dek(sealed_payload, _payload_aad(store_id, event_id, header))
    return Dek(key_id=header.key_id, key=key)


def record_size_ok(record: bytes, limit: int = MAX_RECORD_SIZE) -> bool:
    """True if ``record`` is within ``limit`` bytes (cheap pre-check before decoding)."""
    return len(record) <= limit
