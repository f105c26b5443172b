"""The replay hot path of records: StoredEventOpener and the in-place split.

It must open exactly what the strict path opens and refuse exactly what it
refuses: the AAD bytes are the canonical map of DESIGN.md §5 (so data written
before still opens), every AAD-bound field still binds (INV-013), and the
in-place split accepts no record bytes that the strict canonical decoder would
refuse.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mo_local.crypto import cbor
from mo_local.crypto.errors import AuthenticationFailed, CryptoError, EncodingError
from mo_local.crypto.padding import pad, unpad
from mo_local.crypto.records import (
    KIND_EVENT,
    KIND_KEY,
    MAX_RECORD_SIZE,
    MAX_VERSION,
    RECORD_FORMAT,
    Dek,
    RecordHeader,
    StoredEventOpener,
    _split,
    _stored_payload,
    _unpad,
    new_dek,
    open_event_payload,
    open_header,
    open_key_record,
    payload_aad,
    seal_event_record,
    seal_key_record,
)
from mo_local.crypto.vault import NewVault, UnlockedVault

from .conftest import STORE_ID

AGGREGATE_ID = "3f1c8a5e-1111-4222-8333-444455556666"
EVENT_ID = "9e2d7c4b-aaaa-4bbb-8ccc-dddddddddddd"
ENVELOPE = cbor.encode({"type": "GoalCreated", "data": {"summary": "Run a marathon"}})
LABEL = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300)


@dataclass(frozen=True)
class Row:
    """The routing columns of a stored row (what the store's StoredEvent carries)."""

    event_id: str
    kind: str
    aggregate_type: str
    aggregate_id: str
    version: int
    key_id: str
    record: bytes


def canonical_aad(
    store_id: str, event_id: str, kind: str, aggregate_type: str, aggregate_id: str,
    version: int, key_id: str,
) -> bytes:
    return cbor.encode(
        {
            "v": RECORD_FORMAT,
            "part": "p",
            "store_id": store_id,
            "event_id": event_id,
            "kind": kind,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "version": version,
            "key_id": key_id,
        }
    )


@pytest.fixture
def vault(new_vault: NewVault) -> UnlockedVault:
    return new_vault.vault


def sealed_row(vault: UnlockedVault, dek: Dek, envelope: bytes = ENVELOPE, version: int = 7) -> Row:
    header = RecordHeader(KIND_EVENT, "goal", AGGREGATE_ID, version, dek.key_id)
    record = seal_event_record(vault, STORE_ID, EVENT_ID, header, dek, envelope)
    return Row(EVENT_ID, KIND_EVENT, "goal", AGGREGATE_ID, version, dek.key_id, record)


# --- the AAD: the same canonical bytes as before --------------------------------


@settings(max_examples=200, deadline=None)
@given(
    store_id=LABEL,
    event_id=LABEL,
    kind=st.sampled_from([KIND_EVENT, KIND_KEY]),
    aggregate_type=LABEL,
    aggregate_id=LABEL,
    version=st.one_of(st.integers(0, 300), st.integers(0, MAX_VERSION)),
    key_id=LABEL,
)
def test_inv013_fast_aads_equal_the_canonical_encoding(
    store_id: str, event_id: str, kind: str, aggregate_type: str, aggregate_id: str,
    version: int, key_id: str,
) -> None:
    """INV-013: the assembled AAD is byte for byte the canonical CBOR map of DESIGN.md §5,
    so records sealed before the hot path existed still open (and vice versa)."""
    expected = canonical_aad(
        store_id, event_id, kind, aggregate_type, aggregate_id, version, key_id
    )
    assert (
        payload_aad(store_id, event_id, kind, aggregate_type, aggregate_id, version, key_id)
        == expected
    )
    row = Row(event_id, kind, aggregate_type, aggregate_id, version, key_id, b"")
    opener = StoredEventOpener(store_id)
    assert opener.aad(row) == expected
    assert opener.aad(row) == expected  # second time from the cached pieces


def test_opener_cache_is_bounded_and_stays_correct() -> None:
    opener = StoredEventOpener(STORE_ID)
    rows = [
        Row(str(i), KIND_EVENT, "goal", f"aggregate-{i}", i % 50, f"key-{i}", b"")
        for i in range(StoredEventOpener._MAX_CACHED + 10)
    ]
    for row in rows + rows[:20]:
        assert opener.aad(row) == canonical_aad(
            STORE_ID, row.event_id, row.kind, row.aggregate_type, row.aggregate_id,
            row.version, row.key_id,
        )
    assert len(opener._parts) <= StoredEventOpener._MAX_CACHED


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "other"},
        {"version": -1},
        {"version": MAX_VERSION + 1},
        {"version": True},
        {"event_id": uuid.UUID(EVENT_ID)},
        {"aggregate_id": 5},
        {"key_id": "\ud800"},
    ],
    ids=["kind", "negative", "too-big", "bool", "uuid-object", "int-id", "lone-surrogate"],
)
def test_opener_refuses_impossible_routing_values(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "event_id": EVENT_ID, "kind": KIND_EVENT, "aggregate_type": "goal",
        "aggregate_id": AGGREGATE_ID, "version": 1, "key_id": "k", "record": b"",
    }
    fields.update(changes)
    with pytest.raises(EncodingError):
        StoredEventOpener(STORE_ID).aad(Row(**fields))  # type: ignore[arg-type]


# --- opening: same result, same binding -------------------------------------------


def test_opener_opens_what_the_strict_path_opens(vault: UnlockedVault) -> None:
    dek = new_dek()
    opener = StoredEventOpener(STORE_ID)
    for length in (0, 1, 19, 20, 200, 251, 252, 5000, 70_000):
        envelope = bytes(range(256)) * (length // 256) + bytes(length % 256)
        row = sealed_row(vault, dek, envelope)
        header = RecordHeader(row.kind, row.aggregate_type, row.aggregate_id, row.version,
                              row.key_id)
        assert opener.open(row, dek) == envelope
        assert open_event_payload(STORE_ID, EVENT_ID, header, dek, row.record) == envelope


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": "00000000-0000-4000-8000-000000000001"},
        {"kind": KIND_KEY},
        {"aggregate_type": "project"},
        {"aggregate_id": "00000000-0000-4000-8000-000000000002"},
        {"version": 8},
        {"key_id": "00000000-0000-4000-8000-000000000003"},
    ],
    ids=["event_id", "kind", "aggregate_type", "aggregate_id", "version", "key_id"],
)
def test_inv013_stored_rows_are_bound_to_each_routing_column(
    vault: UnlockedVault, changes: dict[str, object]
) -> None:
    """INV-013 on the replay path: a row whose routing column was changed in the
    database (or whose record was moved to another row) fails authentication."""
    dek = new_dek()
    row = sealed_row(vault, dek)
    assert StoredEventOpener(STORE_ID).open(row, dek) == ENVELOPE
    moved = Row(**{**row.__dict__, **changes})
    with pytest.raises(AuthenticationFailed):
        StoredEventOpener(STORE_ID).open(moved, dek)


def test_inv013_stored_rows_are_bound_to_the_store(vault: UnlockedVault) -> None:
    """INV-013: a record copied into another store's database does not open there."""
    dek = new_dek()
    row = sealed_row(vault, dek)
    with pytest.raises(AuthenticationFailed):
        StoredEventOpener("another-store").open(row, dek)


def test_inv013_a_bit_flip_anywhere_in_a_stored_record_fails(vault: UnlockedVault) -> None:
    """Outside the header ciphertext every flip fails, as on the strict path. The
    header ciphertext is not needed to open a stored payload (the routing columns
    are, through the AAD) — also not on the strict path; receivers of the record
    authenticate it when they open the header."""
    dek = new_dek()
    row = sealed_row(vault, dek)
    header = RecordHeader(row.kind, row.aggregate_type, row.aggregate_id, row.version, row.key_id)
    opener = StoredEventOpener(STORE_ID)
    sealed_header = _split(row.record)[0]
    h_start = row.record.index(sealed_header)
    for position in range(len(row.record)):
        flipped = bytearray(row.record)
        flipped[position] ^= 0x41
        tampered = Row(**{**row.__dict__, "record": bytes(flipped)})
        if h_start <= position < h_start + len(sealed_header):
            strict = open_event_payload(STORE_ID, EVENT_ID, header, dek, tampered.record)
            assert opener.open(tampered, dek) == strict == ENVELOPE
            continue
        with pytest.raises((EncodingError, AuthenticationFailed)):
            opener.open(tampered, dek)
        with pytest.raises((EncodingError, AuthenticationFailed)):
            open_event_payload(STORE_ID, EVENT_ID, header, dek, tampered.record)


# --- the in-place split accepts exactly what the strict decoder accepts ------------


def outcome(split: object, record: bytes) -> bytes | str:
    try:
        return split(record)  # type: ignore[operator, no-any-return]
    except EncodingError:
        return "refused"


def strict_payload(record: bytes) -> bytes:
    return _split(record)[1]


def record_of(h: bytes, p: bytes) -> bytes:
    return cbor.encode({"v": RECORD_FORMAT, "h": h, "p": p})


@settings(max_examples=200, deadline=None)
@given(
    h=st.one_of(st.just(bytes(284)), st.binary(max_size=300)),
    p_size=st.one_of(st.integers(0, 300), st.integers(65_530, 65_600)),
    fill=st.integers(0, 255),
)
def test_split_agrees_with_strict_on_well_formed_records(h: bytes, p_size: int, fill: int) -> None:
    p = bytes([fill]) * p_size
    record = record_of(h, p)
    assert _stored_payload(record) == strict_payload(record) == p


@settings(max_examples=300, deadline=None)
@given(
    p=st.binary(max_size=600),
    edits=st.lists(
        st.tuples(
            # Mostly the structural bytes: heads, keys, the "v" at the end.
            st.one_of(st.sampled_from([*range(7), *range(288, 297), *range(-5, 0)]),
                      st.integers(0, 1000)),
            st.integers(0, 255),
            st.sampled_from("sid"),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_split_agrees_with_strict_on_damaged_records(
    p: bytes, edits: list[tuple[int, int, str]]
) -> None:
    """Any edit (substitution, insertion, deletion of a byte): both refuse or both
    return the same payload; the in-place split never accepts more."""
    data = bytearray(record_of(bytes(284), p))
    for position, value, how in edits:
        at = (len(data) + position) if position < 0 else position % (len(data) + 1)
        if how == "s" and at < len(data):
            data[at] = value
        elif how == "i":
            data.insert(at, value)
        elif how == "d" and at < len(data):
            del data[at]
    record = bytes(data)
    assert outcome(_stored_payload, record) == outcome(strict_payload, record)


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"\xa3",
        record_of(bytes(284), b"x" * 300) + b"\x00",
        record_of(bytes(284), b"x" * 300)[:-1] + b"\x02",
        record_of(bytes(284), b"x" * 300)[:-1] + b"\x18\x01",
        # p = 300 bytes with a four-byte length where two bytes suffice.
        record_of(bytes(284), b"")[:-4] + b"\x5a\x00\x00\x01\x2c" + b"x" * 300 + b"av\x01",
        # p = 30 bytes with a two-byte length where one suffices.
        record_of(bytes(284), b"")[:-4] + b"\x59\x00\x1e" + b"x" * 30 + b"av\x01",
        # The right head but one byte short / long.
        record_of(bytes(284), b"x" * 300)[:-4] + b"av\x01",
        record_of(bytes(284), b"x" * 300)[:-3] + b"xav\x01",
        cbor.encode({"v": RECORD_FORMAT, "h": bytes(284), "p": "text"}),
        cbor.encode({"v": RECORD_FORMAT, "h": bytes(284), "p": b"", "x": 1}),
    ],
    ids=[
        "empty", "head-only", "trailing", "v-2", "v-wide", "p-wide-4", "p-wide-2",
        "p-short", "p-long", "p-text", "extra-key",
    ],
)
def test_split_refuses_what_strict_refuses(record: bytes) -> None:
    with pytest.raises(EncodingError):
        _stored_payload(record)
    with pytest.raises(EncodingError):
        strict_payload(record)


def test_split_refuses_oversize_records() -> None:
    record = record_of(bytes(284), bytes(MAX_RECORD_SIZE))
    assert len(record) > MAX_RECORD_SIZE
    with pytest.raises(EncodingError):
        _stored_payload(record)


# --- key records on the replay path ----------------------------------------------


def key_row(vault: UnlockedVault, dek: Dek) -> Row:
    record = seal_key_record(vault, STORE_ID, EVENT_ID, "goal", AGGREGATE_ID, dek)
    return Row(EVENT_ID, KIND_KEY, "goal", AGGREGATE_ID, 0, dek.key_id, record)


def test_opener_unwraps_stored_key_records(vault: UnlockedVault) -> None:
    dek = new_dek()
    row = key_row(vault, dek)
    opened = StoredEventOpener(STORE_ID).open_key_record(vault, row)
    header = open_header(vault, STORE_ID, EVENT_ID, row.record)
    strict = open_key_record(vault, STORE_ID, EVENT_ID, header, row.record)
    assert opened.key == strict.key == dek.key and opened.key_id == dek.key_id
    with pytest.raises(CryptoError):
        StoredEventOpener(STORE_ID).open_key_record(vault, Row(**{**row.__dict__, "kind": "event"}))


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": "00000000-0000-4000-8000-000000000001"},
        {"aggregate_type": "project"},
        {"aggregate_id": "00000000-0000-4000-8000-000000000002"},
        {"version": 1},
        {"key_id": "00000000-0000-4000-8000-000000000003"},
    ],
    ids=["event_id", "aggregate_type", "aggregate_id", "version", "key_id"],
)
def test_inv013_stored_key_records_are_bound_to_each_routing_column(
    vault: UnlockedVault, changes: dict[str, object]
) -> None:
    """INV-013: a key record moved to another aggregate (or row) does not unwrap."""
    row = key_row(vault, new_dek())
    with pytest.raises(AuthenticationFailed):
        StoredEventOpener(STORE_ID).open_key_record(vault, Row(**{**row.__dict__, **changes}))


# --- unpadding on the replay path --------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    plaintext=st.binary(max_size=700),
    edits=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)), max_size=2),
    cut=st.integers(0, 3),
)
def test_replay_unpad_agrees_with_unpad(
    plaintext: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    """Sound or damaged (a byte changed, the end cut): the same plaintext or the same
    refusal as padding.unpad."""
    data = bytearray(pad(plaintext))
    for position, value in edits:
        data[position % len(data)] = value
    padded = bytes(data[: len(data) - cut])
    assert outcome(_unpad, padded) == outcome(unpad, padded)
    if not edits and not cut:
        assert _unpad(padded) == plaintext
