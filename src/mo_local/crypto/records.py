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
from functools import lru_cache
from typing import NamedTuple, NoReturn, Protocol

from mo_local.crypto import cbor
from mo_local.crypto.errors import CryptoError, EncodingError
from mo_local.crypto.padding import LENGTH_PREFIX, pad, pad_fixed, padme, unpad, unpad_fixed
from mo_local.crypto.primitives import AEAD_OVERHEAD, Aead, random_bytes
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


# AADs and records are canonical CBOR maps (DESIGN.md §5). They are assembled from
# precomputed items (cbor.text_item & co.) rather than by a cbor2 call per record:
# sealing and opening run once per event, and a generic encoder call costs more
# than the AES-GCM itself. The pieces list the keys in canonical order (shorter
# first, then bytewise); tests compare the result with cbor.encode of the map.

_V1 = cbor.text_item("v") + cbor.uint_item(RECORD_FORMAT)
_HEADER_AAD_PREFIX = (
    cbor.map_head(4) + _V1 + cbor.text_item("part") + cbor.text_item("h")
    + cbor.text_item("event_id")
)
_STORE_ID_KEY = cbor.text_item("store_id")
_PAYLOAD_AAD_PREFIX = cbor.map_head(9) + _V1 + cbor.text_item("kind")
_PART_P = cbor.text_item("part") + cbor.text_item("p")
_KIND_ITEMS = {
    KIND_EVENT: cbor.text_item(KIND_EVENT) + _PART_P,
    KIND_KEY: cbor.text_item(KIND_KEY) + _PART_P,
}
_KEY_ID_KEY = cbor.text_item("key_id")
_VERSION_KEY = cbor.text_item("version")
_EVENT_ID_KEY = cbor.text_item("event_id")
_AGGREGATE_ID_KEY = cbor.text_item("aggregate_id")
_AGGREGATE_TYPE_KEY = cbor.text_item("aggregate_type")
_RECORD_PREFIX = cbor.map_head(3) + cbor.text_item("h")
_RECORD_P_KEY = cbor.text_item("p")
_RECORD_SUFFIX = cbor.text_item("v") + cbor.uint_item(RECORD_FORMAT)


def _check_ids(store_id: str, event_id: str) -> None:
    # Not validated elsewhere on this path; anything but text (a UUID object, say)
    # must not reach the AAD.
    if type(store_id) is not str or type(event_id) is not str:
        raise EncodingError("store id and event id must be text")


def _header_aad(store_id: str, event_id: str) -> bytes:
    _check_ids(store_id, event_id)
    return b"".join(
        (
            _HEADER_AAD_PREFIX,
            cbor.text_item(event_id),
            _STORE_ID_KEY,
            cbor.text_item(store_id),
        )
    )


def payload_aad(
    store_id: str,
    event_id: str,
    kind: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    key_id: str,
) -> bytes:
    """The payload AAD: canonical CBOR binding store, event, kind, aggregate, version, key."""
    kind_item = _KIND_ITEMS.get(kind) if type(kind) is str else None
    if kind_item is None:
        raise EncodingError("record header: unknown kind")
    if type(version) is not int or not 0 <= version <= MAX_VERSION:
        raise EncodingError("record header: version must be a non-negative integer")
    return b"".join(
        (
            _PAYLOAD_AAD_PREFIX,
            kind_item,
            _KEY_ID_KEY,
            cbor.text_item(key_id),
            _VERSION_KEY,
            cbor.uint_item(version),
            _EVENT_ID_KEY,
            cbor.text_item(event_id),
            _STORE_ID_KEY,
            cbor.text_item(store_id),
            _AGGREGATE_ID_KEY,
            cbor.text_item(aggregate_id),
            _AGGREGATE_TYPE_KEY,
            cbor.text_item(aggregate_type),
        )
    )


def _payload_aad(store_id: str, event_id: str, header: RecordHeader) -> bytes:
    _check_ids(store_id, event_id)
    return payload_aad(
        store_id,
        event_id,
        header.kind,
        header.aggregate_type,
        header.aggregate_id,
        header.version,
        header.key_id,
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
    return b"".join(
        (
            _RECORD_PREFIX,
            cbor.bytes_item(sealed_header),
            _RECORD_P_KEY,
            cbor.bytes_item(payload_ciphertext),
            _RECORD_SUFFIX,
        )
    )


def _split(record: bytes) -> tuple[bytes, bytes]:
    """Strict split: the generic canonical decoder, for records from the network."""
    value = cbor.decode(record, max_size=MAX_RECORD_SIZE, max_depth=1)
    if isinstance(value, dict) and "v" in value and value["v"] != RECORD_FORMAT:
        raise EncodingError("record: unsupported format version")
    fields = cbor.expect_map(value, _RECORD_KEYS, "record")
    if cbor.field_int(fields, "v", "record") != RECORD_FORMAT:
        raise EncodingError("record: unsupported format version")
    return cbor.field_bytes(fields, "h", "record"), cbor.field_bytes(fields, "p", "record")


# Every record _assemble makes starts with these bytes: the map head, "h", and the
# head of the fixed-size header ciphertext (INV-016); "p" follows that ciphertext.
_SEALED_HEADER_SIZE = HEADER_PLAINTEXT_SIZE + AEAD_OVERHEAD
_STANDARD_PREFIX = _RECORD_PREFIX + cbor.bytes_head(_SEALED_HEADER_SIZE)
_P_KEY_OFFSET = len(_STANDARD_PREFIX) + _SEALED_HEADER_SIZE
_P_ITEM_OFFSET = _P_KEY_OFFSET + len(_RECORD_P_KEY)


# Where the payload bytes start after a head with a one-byte (0x58) or two-byte
# (0x59) length: the common cases.
_P_DATA8 = _P_ITEM_OFFSET + 2
_P_DATA16 = _P_ITEM_OFFSET + 3
_UINT_ITEMS = tuple(cbor.uint_item(n) for n in range(24))
_ID36_HEAD = cbor.text_item("x" * 36)[:-36]  # the head of a 36-byte text item (a UUID)


def _canonical_payload(record: bytes) -> bytes | None:
    """The sealed payload if ``record`` is exactly what ``_assemble`` produces, else None.

    That is the canonical CBOR map {"h": 284-byte header ciphertext, "p": bytes,
    "v": 1}, every head in its shortest form; the header ciphertext is then
    ``record[len(_STANDARD_PREFIX):_P_KEY_OFFSET]``. Callers hand anything else to
    the strict ``_split``, which accepts nothing more (tests check that both agree).
    """
    end = len(record) - len(_RECORD_SUFFIX)
    if not (
        len(record) <= MAX_RECORD_SIZE
        and record.startswith(_STANDARD_PREFIX)
        and record.startswith(_RECORD_P_KEY, _P_KEY_OFFSET)
        and record.endswith(_RECORD_SUFFIX)
    ):
        return None
    # Payloads are padded to at least a few hundred bytes, so their head is
    # almost always 0x59 + a two-byte length; other sizes take the general way.
    if record[_P_ITEM_OFFSET] == 0x59:
        start = _P_ITEM_OFFSET + 3
        length = int.from_bytes(record[_P_ITEM_OFFSET + 1 : start], "big")
        return record[start:end] if length >= 0x100 and start + length == end else None
    payload = cbor.split_bytes_item(record, _P_ITEM_OFFSET)
    return payload[0] if payload is not None and payload[1] == end else None


def _stored_payload(record: bytes) -> bytes:
    """The sealed payload of a record read from the local store, split in place.

    Either way (in place or strict) the payload is authenticated by AES-GCM, with
    its AAD, before any plaintext is used. The common cases of `_canonical_payload`
    (payload heads with a one- or two-byte length) are recognised here first, in
    one frame: replays split every record.
    """
    end = len(record) - len(_RECORD_SUFFIX)
    if (
        record.startswith(_STANDARD_PREFIX)
        and record.startswith(_RECORD_P_KEY, _P_KEY_OFFSET)
        and record.endswith(_RECORD_SUFFIX)
        and len(record) <= MAX_RECORD_SIZE
    ):
        # The three checks leave at least three bytes from _P_ITEM_OFFSET on.
        head = record[_P_ITEM_OFFSET]
        if head == 0x58:
            if 24 <= record[_P_ITEM_OFFSET + 1] == end - _P_DATA8:
                return record[_P_DATA8:end]
        elif head == 0x59 and 0x100 <= int.from_bytes(
            record[_P_ITEM_OFFSET + 1 : _P_DATA16], "big"
        ) == end - _P_DATA16:
            return record[_P_DATA16:end]
    payload = _canonical_payload(record)
    return payload if payload is not None else _split(record)[1]


# PADMÉ bucket sizes of the framed lengths met (few distinct ones), computed once.
_padded_size = lru_cache(maxsize=4096)(padme)


def _unpad(padded: bytes) -> bytes:
    """``unpad`` in one frame for sound input (replays); any other input goes to
    ``unpad`` itself, which raises its own error."""
    end = LENGTH_PREFIX + int.from_bytes(padded[:LENGTH_PREFIX], "big")
    size = len(padded)
    # A size equal to its bucket is at least `end`, so the frame fits; the fill
    # after it must be zeros.
    if size == _padded_size(end) and padded.count(0, end) == size - end:
        return padded[LENGTH_PREFIX:end]
    return unpad(padded)


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
    return _strict_header(unpad_fixed(padded, HEADER_PLAINTEXT_SIZE))


def _strict_header(plain: bytes) -> RecordHeader:
    """The header a (decrypted, unpadded) header plaintext holds, by the generic decoder."""
    value = cbor.decode(plain, max_size=HEADER_PLAINTEXT_SIZE, max_depth=1)
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


class StoredRouting(Protocol):
    """The routing columns and record bytes of a stored row (the store's StoredEvent)."""

    @property
    def event_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def aggregate_type(self) -> str: ...
    @property
    def aggregate_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def key_id(self) -> str: ...
    @property
    def record(self) -> bytes: ...


class StoredEventOpener:
    """Opens the payloads of one store's locally stored event rows: the replay hot path.

    The same AES-GCM check with the same AAD as ``open_event_payload`` (INV-013);
    what differs is the cost. The record is split in place, and the AAD is
    assembled from canonical pieces cached per (kind, key, aggregate): only
    the version and the event id are encoded per event.
    """

    __slots__ = ("_parts", "_store_item")
    _MAX_CACHED = 4096  # aggregates; the cache is dropped when full (keeps memory bounded)

    def __init__(self, store_id: str) -> None:
        """Bind the opener to ``store_id``."""
        self._store_item = _STORE_ID_KEY + cbor.text_item(store_id)
        self._parts: dict[tuple[str, str, str, str], tuple[bytes, bytes]] = {}

    def _aad_parts(
        self, kind: str, key_id: str, aggregate_id: str, aggregate_type: str
    ) -> tuple[bytes, bytes]:
        kind_item = _KIND_ITEMS.get(kind) if type(kind) is str else None
        if kind_item is None:
            raise EncodingError("record header: unknown kind")
        before = b"".join(
            (_PAYLOAD_AAD_PREFIX, kind_item, _KEY_ID_KEY, cbor.text_item(key_id), _VERSION_KEY)
        )
        after = b"".join(
            (
                self._store_item,
                _AGGREGATE_ID_KEY,
                cbor.text_item(aggregate_id),
                _AGGREGATE_TYPE_KEY,
                cbor.text_item(aggregate_type),
            )
        )
        if len(self._parts) >= self._MAX_CACHED:
            self._parts.clear()
        self._parts[(kind, key_id, aggregate_id, aggregate_type)] = (before, after)
        return before, after

    def aad(self, row: StoredRouting) -> bytes:
        """The payload AAD of ``row``: byte for byte ``payload_aad`` of its columns."""
        parts = self._parts.get((row.kind, row.key_id, row.aggregate_id, row.aggregate_type))
        if parts is None:
            parts = self._aad_parts(row.kind, row.key_id, row.aggregate_id, row.aggregate_type)
        version = row.version
        if type(version) is not int or not 0 <= version <= MAX_VERSION:
            raise EncodingError("record header: version must be a non-negative integer")
        return b"".join(
            (
                parts[0],
                cbor.uint_item(version),
                _EVENT_ID_KEY,
                cbor.text_item(row.event_id),
                parts[1],
            )
        )

    def open(self, row: StoredRouting, dek: Dek) -> bytes:
        """Decrypt ``row``'s payload and return the unpadded envelope bytes.

        ``aad`` inlined (once per event of a replay): the same bytes, checks and
        errors, a few calls fewer.
        """
        kind, key_id, aggregate_id = row.kind, row.key_id, row.aggregate_id
        aggregate_type = row.aggregate_type
        parts = self._parts.get((kind, key_id, aggregate_id, aggregate_type))
        if parts is None:
            parts = self._aad_parts(kind, key_id, aggregate_id, aggregate_type)
        version = row.version
        if type(version) is not int or not 0 <= version <= MAX_VERSION:
            raise EncodingError("record header: version must be a non-negative integer")
        event_id = row.event_id
        aad = b"".join(
            (
                parts[0],
                _UINT_ITEMS[version] if version < 24 else cbor.uint_item(version),
                _EVENT_ID_KEY,
                # cbor.text_item's result for the usual ASCII id, without the call.
                _ID36_HEAD + event_id.encode()
                if type(event_id) is str and len(event_id) == 36 and event_id.isascii()
                else cbor.text_item(event_id),
                parts[1],
            )
        )
        return _unpad(dek._aead.open(_stored_payload(row.record), aad))

    def open_key_record(self, vault: UnlockedVault, row: StoredRouting) -> Dek:
        """Unwrap the DEK of a locally stored key record (the AAD of ``open_key_record``)."""
        if row.kind != KIND_KEY:
            raise CryptoError("not a key record")
        key = vault.unwrap_dek(_stored_payload(row.record), self.aad(row))
        return Dek(key_id=row.key_id, key=key)


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


# -- records from the network (sync pulls) -----------------------------------------------
#
# The same checks as ``open_header`` followed by ``open_event_payload`` or
# ``open_key_record`` — every pulled record's header and payload are authenticated,
# with the same AADs — but the record is split once instead of three times, and the
# canonical forms are recognised in place: anything else goes to the strict
# generic decoder, which accepts nothing more (tests check that both agree).


def _split_pulled(record: bytes) -> tuple[bytes, bytes]:
    """(sealed header, sealed payload) of a record: exactly what ``_split`` returns."""
    payload = _canonical_payload(record)
    if payload is not None:
        return record[len(_STANDARD_PREFIX) : _P_KEY_OFFSET], payload
    return _split(record)


class PulledHeader(NamedTuple):
    """A pulled record's header, checked as ``RecordHeader`` checks it (a tuple: one per record)."""

    kind: str
    aggregate_type: str
    aggregate_id: str
    version: int
    key_id: str


_HEADER_START = cbor.map_head(5) + cbor.text_item("kind")
_HEADER_EVENT = cbor.text_item(KIND_EVENT) + cbor.text_item("key_id")
_HEADER_KEY = cbor.text_item(KIND_KEY) + cbor.text_item("key_id")
_HEADER_VERSION = cbor.text_item("version")
_HEADER_AGGREGATE_ID = cbor.text_item("aggregate_id")
_HEADER_AGGREGATE_TYPE = cbor.text_item("aggregate_type")
_UINT_WIDTHS = {24: 1, 25: 2, 26: 4, 27: 8}


class _NotCanonical(Exception):
    """The bytes are not the canonical layout: the strict decoder decides."""


def _label_at(data: bytes, pos: int) -> tuple[str, int]:
    """The canonical text item of a label (1 to MAX_LABEL_BYTES bytes) at ``pos``, and the
    offset after it."""
    initial = data[pos]
    if 0x60 < initial < 0x78:
        start, end = pos + 1, pos + 1 + initial - 0x60
    elif initial == 0x78 and 24 <= data[pos + 1] <= MAX_LABEL_BYTES:
        start = pos + 2
        end = start + data[pos + 1]
    else:
        raise _NotCanonical
    if end > len(data):
        raise _NotCanonical
    return data[start:end].decode("utf-8"), end


def _header_fields(plain: bytes) -> PulledHeader:
    """The header if ``plain`` is exactly the canonical map ``_header_plaintext`` encodes
    of a valid header; _NotCanonical otherwise (also for anything ``RecordHeader`` refuses)."""
    pos = len(_HEADER_START)
    if not plain.startswith(_HEADER_START):
        raise _NotCanonical
    if plain.startswith(_HEADER_EVENT, pos):
        kind, pos = KIND_EVENT, pos + len(_HEADER_EVENT)
    elif plain.startswith(_HEADER_KEY, pos):
        kind, pos = KIND_KEY, pos + len(_HEADER_KEY)
    else:
        raise _NotCanonical
    key_id, pos = _label_at(plain, pos)
    if not plain.startswith(_HEADER_VERSION, pos):
        raise _NotCanonical
    pos += len(_HEADER_VERSION)
    initial = plain[pos]
    if initial < 24:
        version = initial
        pos += 1
    else:
        width = _UINT_WIDTHS.get(initial)
        if width is None:
            raise _NotCanonical
        version = int.from_bytes(plain[pos + 1 : pos + 1 + width], "big")
        pos += 1 + width
        # Canonical (the shortest head that holds it), within range, and all there.
        if not (24 if width == 1 else 1 << (4 * width)) <= version <= MAX_VERSION or pos > len(
            plain
        ):
            raise _NotCanonical
    if not plain.startswith(_HEADER_AGGREGATE_ID, pos):
        raise _NotCanonical
    aggregate_id, pos = _label_at(plain, pos + len(_HEADER_AGGREGATE_ID))
    if not plain.startswith(_HEADER_AGGREGATE_TYPE, pos):
        raise _NotCanonical
    aggregate_type, pos = _label_at(plain, pos + len(_HEADER_AGGREGATE_TYPE))
    if pos != len(plain):
        raise _NotCanonical
    return PulledHeader(kind, aggregate_type, aggregate_id, version, key_id)


def parse_header_plaintext(padded: bytes) -> PulledHeader:
    """The header a decrypted (padded) header plaintext holds; the checks of ``open_header``.

    The canonical layout of a valid header is read in place; any other bytes go
    to the strict generic decoder and ``RecordHeader``, which refuse them (or,
    were they valid after all, read the same header).
    """
    plain = unpad_fixed(padded, HEADER_PLAINTEXT_SIZE)
    try:
        return _header_fields(plain)
    except (_NotCanonical, IndexError, UnicodeDecodeError):
        pass
    header = _strict_header(plain)
    return PulledHeader(
        header.kind, header.aggregate_type, header.aggregate_id, header.version, header.key_id
    )


class PulledRecordOpener:
    """Opens records that arrived from the network for one store: the sync pull hot path.

    ``header`` authenticates and parses the header (AAD binds store and event id)
    and hands back the sealed payload; ``event_payload`` or ``key`` then opens that
    payload under the AAD of the header's routing fields — exactly the checks of
    ``open_header`` and ``open_event_payload``/``open_key_record``. The AADs are
    assembled from pieces cached per store and per (kind, key, aggregate).
    """

    __slots__ = ("_parts", "_store_item", "_vault")
    _MAX_CACHED = 4096  # aggregates; the cache is dropped when full (keeps memory bounded)

    def __init__(self, vault: UnlockedVault, store_id: str) -> None:
        """Bind the opener to ``vault`` and ``store_id``."""
        _check_ids(store_id, "")
        self._vault = vault
        self._store_item = _STORE_ID_KEY + cbor.text_item(store_id)
        self._parts: dict[tuple[str, str, str, str], tuple[bytes, bytes]] = {}

    def header(self, event_id: str, record: bytes) -> tuple[PulledHeader, bytes]:
        """Decrypt and parse ``record``'s header; returns it with the sealed payload."""
        sealed_header, sealed_payload = _split_pulled(record)
        # _header_aad(store_id, event_id), the store's part precomputed.
        aad = b"".join((_HEADER_AAD_PREFIX, cbor.text_item(event_id), self._store_item))
        padded = self._vault.stream_aead().open(sealed_header, aad)
        return parse_header_plaintext(padded), sealed_payload

    def _aad(self, event_id: str, header: PulledHeader) -> bytes:
        """``payload_aad`` of the header's fields and ``event_id``."""
        kind, aggregate_type, aggregate_id, version, key_id = header
        parts = self._parts.get((kind, key_id, aggregate_id, aggregate_type))
        if parts is None:
            kind_item = _KIND_ITEMS.get(kind)
            if kind_item is None:
                raise EncodingError("record header: unknown kind")
            parts = (
                b"".join((_PAYLOAD_AAD_PREFIX, kind_item, _KEY_ID_KEY, cbor.text_item(key_id),
                          _VERSION_KEY)),
                b"".join((self._store_item, _AGGREGATE_ID_KEY, cbor.text_item(aggregate_id),
                          _AGGREGATE_TYPE_KEY, cbor.text_item(aggregate_type))),
            )
            if len(self._parts) >= self._MAX_CACHED:
                self._parts.clear()
            self._parts[(kind, key_id, aggregate_id, aggregate_type)] = parts
        return b"".join(
            (parts[0], cbor.uint_item(version), _EVENT_ID_KEY, cbor.text_item(event_id), parts[1])
        )

    def event_payload(
        self, event_id: str, header: PulledHeader, dek: Dek, sealed_payload: bytes
    ) -> bytes:
        """Decrypt an event's sealed payload; the unpadded envelope bytes."""
        return unpad(dek._aead.open(sealed_payload, self._aad(event_id, header)))

    def key(self, event_id: str, header: PulledHeader, sealed_payload: bytes) -> Dek:
        """Unwrap the DEK of a key record's sealed payload."""
        key = self._vault.unwrap_dek(sealed_payload, self._aad(event_id, header))
        return Dek(key_id=header.key_id, key=key)
