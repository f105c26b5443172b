"""Canonical CBOR: the one encoding for everything hashed, sealed or used as AAD.

Only a small data model crosses this boundary: ``int`` (64-bit range), ``str``,
``bytes``, ``bool``, ``None``, ``float``, ``list`` and ``dict`` with text keys.
Decoding is strict: input must be exactly what ``encode`` would produce for the
decoded value, so every value has one byte representation (no malleability).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import cbor2

from mo_local.crypto.errors import EncodingError

MAX_SIZE = 1 << 20
MAX_DEPTH = 16

_INT_MIN = -(1 << 64)
_INT_MAX = (1 << 64) - 1


class _TagRefused(Exception):
    """Raised inside cbor2 when the input carries any tag."""


def _refuse_tag(*_args: object) -> object:
    raise _TagRefused


class _NoSemanticTags(Mapping[int, cbor2.SemanticDecoderCallback]):
    """Maps every tag number to a refusal, replacing cbor2's built-in tag decoders.

    Without this, decoding untrusted input would run cbor2's semantic decoders
    (regular expressions, MIME messages, decimals, ...) before we could refuse
    the result; here no tagged item is ever interpreted.
    """

    def __getitem__(self, tag: int) -> cbor2.SemanticDecoderCallback:
        return _refuse_tag

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_NO_TAGS = _NoSemanticTags()


def _check_value(obj: object, depth: int, max_depth: int) -> bool:
    """Refuse anything outside the data model; map keys must be text.

    Returns True when ``obj`` holds no float and every map already lists its keys
    in canonical order: then cbor2's plain (non-canonical) encoder, which is about
    twice as fast, produces exactly the canonical bytes. This runs on every record
    sealed or opened, hence the inlined scalar cases.
    """
    kind = type(obj)
    # Exact types, not isinstance: subclasses (bool of int, enums) would not round-trip.
    if kind is str or kind is bytes or kind is bool or obj is None:
        return True
    if kind is int:
        if not _INT_MIN <= obj <= _INT_MAX:  # type: ignore[operator]
            # Bigger integers would need a bignum tag, which decoding refuses.
            raise EncodingError("integer outside the 64-bit CBOR range")
        return True
    if kind is float:
        return False  # canonical CBOR picks the shortest float width; plain mode does not
    if kind is not list and kind is not dict:
        raise EncodingError(f"type {kind.__name__} is not allowed in canonical CBOR")
    if depth >= max_depth:
        raise EncodingError("CBOR nesting too deep")
    plain = True
    if isinstance(obj, list):
        for item in obj:
            item_kind = type(item)
            if not (item_kind is str or item_kind is bytes):
                plain = _check_value(item, depth + 1, max_depth) and plain
    elif isinstance(obj, dict):
        previous = b""
        for key, value in obj.items():
            if type(key) is not str:
                raise EncodingError("CBOR map keys must be text")
            # Canonical map order: shorter encoded key first, then bytewise.
            raw = key.encode("utf-8", "surrogatepass")
            if len(raw) < len(previous) or (len(raw) == len(previous) and raw <= previous):
                plain = False
            previous = raw
            value_kind = type(value)
            if not (value_kind is str or value_kind is bytes):
                plain = _check_value(value, depth + 1, max_depth) and plain
    return plain


def _dumps(obj: object, plain: bool) -> bytes | None:
    try:
        return cbor2.dumps(obj, canonical=not plain)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError):
        return None  # e.g. a lone surrogate in a str


def _caused_by_tag(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(MAX_DEPTH + 4):
        if seen is None:
            return False
        if isinstance(seen, _TagRefused):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def encode(obj: object) -> bytes:
    """Encode ``obj`` as deterministic CBOR; refuse types outside the data model."""
    encoded = _dumps(obj, _check_value(obj, 0, MAX_DEPTH))
    # Raised here, not in an except block, so no library message (which may quote
    # the value) rides along as __context__.
    if encoded is None:
        raise EncodingError("value cannot be encoded as CBOR")
    return encoded


def encode_prechecked(obj: dict[str, str | bytes | int]) -> bytes:
    """Encode a flat map the caller built from validated fields, keys in canonical order.

    The hot path for AADs and records: it skips the data-model walk and uses the
    plain encoder, which yields canonical bytes exactly because the keys are
    already in canonical order and the values are text, bytes or 64-bit ints
    (tests check it against ``encode``).
    """
    encoded = _dumps(obj, plain=True)
    if encoded is None:
        raise EncodingError("value cannot be encoded as CBOR")
    return encoded


# -- hand-built items for the hot path ------------------------------------------------
#
# RFC 8949 §4.2.1: a canonical head uses the shortest form of its argument. These
# build single items exactly as ``encode`` would, so callers can assemble canonical
# maps from precomputed pieces (AADs, records) without a cbor2 call per event;
# tests compare them with ``encode`` over the whole argument range.

_UINT_MAX = (1 << 64) - 1


def _small_head(major: int, argument: int) -> bytes:
    return bytes((major | argument,)) if argument < 24 else bytes((major | 24, argument))


# Heads with arguments below 256, per major type: lengths of ids and small versions.
_SMALL_HEADS = tuple(
    tuple(_small_head(major << 5, argument) for argument in range(0x100)) for major in range(8)
)


def _head(major: int, argument: int) -> bytes:
    if argument < 0x100:
        return _SMALL_HEADS[major >> 5][argument]
    if argument < 0x10000:
        return bytes((major | 25,)) + argument.to_bytes(2, "big")
    if argument < 0x100000000:
        return bytes((major | 26,)) + argument.to_bytes(4, "big")
    return bytes((major | 27,)) + argument.to_bytes(8, "big")


_UINT_HEADS = _SMALL_HEADS[0]
_TEXT_HEADS = _SMALL_HEADS[3]


def uint_item(value: int) -> bytes:
    """The canonical CBOR item of a non-negative 64-bit integer (not bool)."""
    if type(value) is not int or not 0 <= value <= _UINT_MAX:
        raise EncodingError("expected a non-negative 64-bit integer")
    return _UINT_HEADS[value] if value < 0x100 else _head(0x00, value)


def text_item(value: str) -> bytes:
    """The canonical CBOR item of a text string."""
    if type(value) is not str:
        raise EncodingError("expected text")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodingError("text is not valid Unicode") from None
    size = len(raw)
    return (_TEXT_HEADS[size] if size < 0x100 else _head(0x60, size)) + raw


def bytes_head(length: int) -> bytes:
    """The canonical head of a byte string of ``length`` bytes (the bytes follow)."""
    return _head(0x40, length)


def bytes_item(value: bytes) -> bytes:
    """The canonical CBOR item of a byte string."""
    return _head(0x40, len(value)) + value


def map_head(size: int) -> bytes:
    """The canonical head of a map with ``size`` pairs (the pairs follow, in key order)."""
    return _head(0xA0, size)


def split_bytes_item(data: bytes, offset: int) -> tuple[bytes, int] | None:
    """The byte string whose canonical item starts at ``offset``, and the offset after it.

    None when the item there is not a canonically encoded byte string or runs
    past the end of ``data``; the caller then falls back to ``decode``.
    """
    if offset >= len(data):
        return None
    initial = data[offset]
    if initial >> 5 != 2:
        return None
    info = initial & 0x1F
    start = offset + 1
    if info < 24:
        length = info
    elif info == 24:
        length, start = data[start] if start < len(data) else 0, start + 1
        if length < 24:
            return None
    elif info == 25:
        length, start = int.from_bytes(data[start : start + 2], "big"), start + 2
        if length < 0x100:
            return None
    elif info == 26:
        length, start = int.from_bytes(data[start : start + 4], "big"), start + 4
        if length < 0x10000:
            return None
    else:
        return None  # 8-byte lengths exceed every size limit; indefinite ones are refused
    end = start + length
    if end > len(data):
        return None
    return data[start:end], end


def decode(data: bytes, *, max_size: int = MAX_SIZE, max_depth: int = MAX_DEPTH) -> object:
    """Decode one canonical CBOR item; refuse anything ``encode`` would not have produced."""
    if len(data) > max_size:
        raise EncodingError("CBOR input too large")
    if not data:
        raise EncodingError("CBOR input is empty")
    failure = ""
    value: object = None
    try:
        value = cbor2.loads(
            data,
            max_depth=max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            semantic_decoders=_NO_TAGS,
            tag_hook=_refuse_tag,
        )
    except (cbor2.CBORError, _TagRefused) as exc:
        failure = "CBOR tags are not allowed" if _caused_by_tag(exc) else "malformed CBOR"
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError):
        failure = "malformed CBOR"
    # Raised outside the handler: cbor2's messages can echo map keys or content and
    # must not ride along as __context__.
    if failure:
        raise EncodingError(failure)
    # Re-encode and compare: the one check that catches every non-canonical form
    # (non-minimal lengths or ints, unsorted keys, wide floats, trailing bytes).
    again = _dumps(value, _check_value(value, 0, max_depth)) or b""
    if again != data:
        # cbor2.loads ignores what follows the first item; a strict prefix match means that.
        if len(again) < len(data) and data[: len(again)] == again:
            raise EncodingError("trailing bytes after the CBOR item")
        raise EncodingError("CBOR input is not in canonical form")
    return value


def expect_map(value: object, keys: frozenset[str], what: str) -> dict[str, object]:
    """Return ``value`` as a map with exactly ``keys``; EncodingError naming ``what`` otherwise."""
    if not isinstance(value, dict):
        raise EncodingError(f"{what} is not a CBOR map")
    if value.keys() != keys:
        # Never echo the unexpected keys: they come from untrusted input.
        raise EncodingError(f"{what} does not have the expected fields")
    return value


def field_int(fields: dict[str, object], key: str, what: str) -> int:
    """The integer (not bool) at ``key``; EncodingError otherwise."""
    value = fields[key]
    if type(value) is not int or not isinstance(value, int):
        raise EncodingError(f"{what}: field {key} must be an integer")
    return value


def field_str(fields: dict[str, object], key: str, what: str) -> str:
    """The text string at ``key``; EncodingError otherwise."""
    value = fields[key]
    if not isinstance(value, str):
        raise EncodingError(f"{what}: field {key} must be text")
    return value


def field_bytes(fields: dict[str, object], key: str, what: str) -> bytes:
    """The byte string at ``key``; EncodingError otherwise."""
    value = fields[key]
    if not isinstance(value, bytes):
        raise EncodingError(f"{what}: field {key} must be bytes")
    return value
