"""The sync pull hot path of records: PulledRecordOpener and its in-place readers.

Every pulled record is still fully authenticated — the header under K_stream with
its AAD, the payload (or wrapped DEK) under the AAD of the header's routing
fields — and the in-place readers accept exactly what the strict canonical
decoder accepts: anything they do not recognise goes to that decoder.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.crypto import cbor
from mo_local.crypto.errors import AuthenticationFailed, EncodingError
from mo_local.crypto.kdf import KdfParams
from mo_local.crypto.padding import pad_fixed, unpad_fixed
from mo_local.crypto.records import (
    HEADER_PLAINTEXT_SIZE,
    KIND_EVENT,
    KIND_KEY,
    MAX_RECORD_SIZE,
    MAX_VERSION,
    RECORD_FORMAT,
    PulledHeader,
    PulledRecordOpener,
    RecordHeader,
    _header_fields,
    _header_plaintext,
    _split,
    _split_pulled,
    new_dek,
    open_event_payload,
    open_header,
    open_key_record,
    parse_header_plaintext,
    payload_aad,
    seal_event_record,
    seal_key_record,
)
from mo_local.crypto.vault import UnlockedVault, create_vault

STORE_ID = "5b0c3f1e-8d7a-4c55-9f1e-2a6b7c8d9e01"
AGGREGATE_ID = "3f1c8a5e-1111-4222-8333-444455556666"
EVENT_ID = "9e2d7c4b-aaaa-4bbb-8ccc-dddddddddddd"
ENVELOPE = cbor.encode({"type": "GoalCreated", "data": {"summary": "Run a marathon"}})
FAST_KDF = KdfParams(memory_kib=8192, iterations=1, parallelism=1)


@pytest.fixture(scope="module")
def vault() -> UnlockedVault:
    return create_vault(STORE_ID, "correct horse battery staple", FAST_KDF).vault


def event_record(vault: UnlockedVault, version: int = 7, envelope: bytes = ENVELOPE,
                 event_id: str = EVENT_ID) -> tuple[bytes, RecordHeader, object]:
    dek = new_dek()
    header = RecordHeader(KIND_EVENT, "goal", AGGREGATE_ID, version, dek.key_id)
    return seal_event_record(vault, STORE_ID, event_id, header, dek, envelope), header, dek


# --- opening: the same result as the strict path ------------------------------------


@pytest.mark.parametrize("version", [1, 23, 24, 255, 256, 65_535, 65_536, 2**32, MAX_VERSION])
@pytest.mark.parametrize("length", [0, 20, 251, 5000, 70_000])
def test_opener_opens_events_as_the_strict_path(
    vault: UnlockedVault, version: int, length: int
) -> None:
    envelope = bytes(range(256)) * (length // 256) + bytes(length % 256)
    record, header, dek = event_record(vault, version, envelope)
    opener = PulledRecordOpener(vault, STORE_ID)
    pulled, sealed = opener.header(EVENT_ID, record)
    assert pulled == tuple(vars(open_header(vault, STORE_ID, EVENT_ID, record)).values())
    assert pulled == PulledHeader(KIND_EVENT, "goal", AGGREGATE_ID, version, header.key_id)
    assert sealed == _split(record)[1]
    assert opener.event_payload(EVENT_ID, pulled, dek, sealed) == envelope  # type: ignore[arg-type]
    assert open_event_payload(STORE_ID, EVENT_ID, header, dek, record) == envelope  # type: ignore[arg-type]


def test_opener_unwraps_key_records_as_the_strict_path(vault: UnlockedVault) -> None:
    dek = new_dek()
    record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    opener = PulledRecordOpener(vault, STORE_ID)
    pulled, sealed = opener.header(EVENT_ID, record)
    assert pulled == PulledHeader(KIND_KEY, "goal", AGGREGATE_ID, 0, dek.key_id)
    opened = opener.key(EVENT_ID, pulled, sealed)
    strict = open_key_record(vault, STORE_ID, EVENT_ID,
                             open_header(vault, STORE_ID, EVENT_ID, record), record)
    assert opened.key == strict.key == dek.key and opened.key_id == dek.key_id


def test_the_payload_aad_is_the_canonical_one(vault: UnlockedVault) -> None:
    opener = PulledRecordOpener(vault, STORE_ID)
    for i in range(PulledRecordOpener._MAX_CACHED + 10):
        header = PulledHeader(KIND_EVENT, "goal", f"aggregate-{i % 5000}", i, f"key-{i % 7}")
        event_id = str(i)
        assert opener._aad(event_id, header) == payload_aad(
            STORE_ID, event_id, header.kind, header.aggregate_type, header.aggregate_id,
            header.version, header.key_id)
    assert len(opener._parts) <= PulledRecordOpener._MAX_CACHED


# --- authentication: every part is bound, every byte counts --------------------------


def test_inv013_a_pulled_record_is_bound_to_its_store_and_event_id(vault: UnlockedVault) -> None:
    record, _, _ = event_record(vault)
    with pytest.raises(AuthenticationFailed):
        PulledRecordOpener(vault, "another-store").header(EVENT_ID, record)
    with pytest.raises(AuthenticationFailed):
        PulledRecordOpener(vault, STORE_ID).header(str(uuid.uuid4()), record)


def test_inv013_the_payload_is_bound_to_the_header_it_came_with(vault: UnlockedVault) -> None:
    """A payload spliced under another record's (authentic) header does not open."""
    opener = PulledRecordOpener(vault, STORE_ID)
    record, _, dek = event_record(vault, version=3)
    other, _, _ = event_record(vault, version=4)
    header, _ = opener.header(EVENT_ID, other)
    _, sealed = opener.header(EVENT_ID, record)
    with pytest.raises(AuthenticationFailed):
        opener.event_payload(EVENT_ID, header, dek, sealed)  # type: ignore[arg-type]


def test_inv013_a_bit_flip_anywhere_in_a_pulled_record_fails(vault: UnlockedVault) -> None:
    """Unlike a locally stored row, a pulled record is opened whole: header and payload."""
    record, _, dek = event_record(vault, envelope=b"x" * 40)
    opener = PulledRecordOpener(vault, STORE_ID)
    for position in range(len(record)):
        flipped = bytearray(record)
        flipped[position] ^= 0x41
        with pytest.raises((EncodingError, AuthenticationFailed)):
            header, sealed = opener.header(EVENT_ID, bytes(flipped))
            opener.event_payload(EVENT_ID, header, dek, sealed)  # type: ignore[arg-type]


# --- the in-place split: exactly what the strict split accepts ----------------------


def record_of(h: bytes, p: bytes) -> bytes:
    return cbor.encode({"v": RECORD_FORMAT, "h": h, "p": p})


def split_outcome(split: object, record: bytes) -> tuple[bytes, bytes] | str:
    try:
        return split(record)  # type: ignore[operator, no-any-return]
    except EncodingError:
        return "refused"


@settings(max_examples=300, deadline=None)
@given(
    h_size=st.sampled_from([284, 0, 283, 285, 23, 24, 255, 256]),
    p=st.binary(max_size=600),
    edits=st.lists(
        st.tuples(
            st.one_of(st.sampled_from([*range(7), *range(288, 297), *range(-5, 0)]),
                      st.integers(0, 1000)),
            st.integers(0, 255),
            st.sampled_from("sidn"),
        ),
        max_size=3,
    ),
)
def test_split_agrees_with_strict(h_size: int, p: bytes, edits: list[tuple[int, int, str]]) -> None:
    data = bytearray(record_of(bytes(h_size), p))
    for position, value, how in edits:
        at = (len(data) + position) if position < 0 else position % (len(data) + 1)
        if how == "s" and at < len(data):
            data[at] = value
        elif how == "i":
            data.insert(at, value)
        elif how == "d" and at < len(data):
            del data[at]
    record = bytes(data)
    assert split_outcome(_split_pulled, record) == split_outcome(_split, record)


def test_split_refuses_oversize_records() -> None:
    record = record_of(bytes(284), bytes(MAX_RECORD_SIZE))
    with pytest.raises(EncodingError):
        _split_pulled(record)


# --- the header reader: exactly what cbor.decode + RecordHeader accept ---------------


def strict_header(padded: bytes) -> tuple[object, ...] | str:
    """What `open_header` makes of a decrypted header plaintext."""
    try:
        plain = unpad_fixed(padded, HEADER_PLAINTEXT_SIZE)
        value = cbor.decode(plain, max_size=HEADER_PLAINTEXT_SIZE, max_depth=1)
        fields = cbor.expect_map(value, frozenset(
            {"kind", "aggregate_type", "aggregate_id", "version", "key_id"}), "record header")
        header = RecordHeader(
            kind=cbor.field_str(fields, "kind", "h"),
            aggregate_type=cbor.field_str(fields, "aggregate_type", "h"),
            aggregate_id=cbor.field_str(fields, "aggregate_id", "h"),
            version=cbor.field_int(fields, "version", "h"),
            key_id=cbor.field_str(fields, "key_id", "h"),
        )
    except EncodingError:
        return "refused"
    return (header.kind, header.aggregate_type, header.aggregate_id, header.version,
            header.key_id)


def fast_header(padded: bytes) -> tuple[object, ...] | str:
    try:
        return tuple(parse_header_plaintext(padded))
    except EncodingError:
        return "refused"


LABEL = st.one_of(
    st.sampled_from(["", "goal", "x" * 23, "x" * 24, "x" * 48, "x" * 49, "é" * 24, "é" * 25]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
)


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from([KIND_EVENT, KIND_KEY, "other", ""]),
    aggregate_type=LABEL,
    aggregate_id=LABEL,
    version=st.one_of(st.integers(0, 300), st.sampled_from(
        [23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, MAX_VERSION, MAX_VERSION + 1,
         2**64 - 1, -1])),
    key_id=LABEL,
)
def test_header_reader_agrees_with_strict_on_any_header(
    kind: str, aggregate_type: str, aggregate_id: str, version: int, key_id: str
) -> None:
    plain = cbor.encode({"kind": kind, "key_id": key_id, "version": version,
                         "aggregate_id": aggregate_id, "aggregate_type": aggregate_type})
    if len(plain) + 4 > HEADER_PLAINTEXT_SIZE:
        return
    padded = pad_fixed(plain, HEADER_PLAINTEXT_SIZE)
    assert fast_header(padded) == strict_header(padded)


@settings(max_examples=400, deadline=None)
@given(
    version=st.sampled_from([0, 7, 24, 300, 70_000, 2**40]),
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 255), st.sampled_from("sid")),
        min_size=1, max_size=3,
    ),
)
def test_header_reader_agrees_with_strict_on_damaged_headers(
    version: int, edits: list[tuple[int, int, str]]
) -> None:
    plain = bytearray(cbor.encode({"kind": KIND_EVENT, "key_id": str(uuid.uuid4()),
                                   "version": version, "aggregate_id": AGGREGATE_ID,
                                   "aggregate_type": "goal"}))
    for position, value, how in edits:
        at = position % (len(plain) + 1)
        if how == "s" and at < len(plain):
            plain[at] = value
        elif how == "i":
            plain.insert(at, value)
        elif how == "d" and at < len(plain):
            del plain[at]
    padded = pad_fixed(bytes(plain), HEADER_PLAINTEXT_SIZE)
    assert fast_header(padded) == strict_header(padded)


@pytest.mark.parametrize(
    "plain",
    [
        # Keys out of canonical order, a non-minimal version, a trailing byte, a tag.
        bytes.fromhex("a5") + cbor.text_item("key_id")
        + cbor.text_item("k") + cbor.text_item("kind") + cbor.text_item("event")
        + cbor.text_item("version") + b"\x01" + cbor.text_item("aggregate_id")
        + cbor.text_item("a") + cbor.text_item("aggregate_type") + cbor.text_item("goal"),
        bytes.fromhex("a5") + cbor.text_item("kind") + cbor.text_item("event")
        + cbor.text_item("key_id") + cbor.text_item("k") + cbor.text_item("version") + b"\x18\x01"
        + cbor.text_item("aggregate_id") + cbor.text_item("a")
        + cbor.text_item("aggregate_type") + cbor.text_item("goal"),
        cbor.encode({"kind": "event", "key_id": "k", "version": 1, "aggregate_id": "a",
                     "aggregate_type": "goal"}) + b"\x00",
        bytes.fromhex("a5") + cbor.text_item("kind") + cbor.text_item("event")
        + cbor.text_item("key_id") + cbor.text_item("k") + cbor.text_item("version")
        + b"\xc1\x01" + cbor.text_item("aggregate_id") + cbor.text_item("a")
        + cbor.text_item("aggregate_type") + cbor.text_item("goal"),
    ],
    ids=["unsorted", "wide-int", "trailing", "tagged"],
)
def test_header_reader_refuses_non_canonical_headers(plain: bytes) -> None:
    padded = pad_fixed(plain, HEADER_PLAINTEXT_SIZE)
    with pytest.raises(EncodingError):
        parse_header_plaintext(padded)
    assert strict_header(padded) == "refused"


def test_header_reader_reads_valid_headers_in_place() -> None:
    """The in-place reader (not the strict fallback) handles what `_header_plaintext` makes."""
    for version in (0, 1, 24, 256, 70_000, 2**33, MAX_VERSION):
        for label in ("g", "x" * 23, "x" * 24, "é" * 24):
            kind = KIND_KEY if version == 0 else KIND_EVENT
            header = RecordHeader(kind, label, label, version, label)
            plain = unpad_fixed(_header_plaintext(header), HEADER_PLAINTEXT_SIZE)
            assert _header_fields(plain) == PulledHeader(kind, label, label, version, label)
