"""Encrypted caches of derived state (DESIGN.md §5 "cache key", §6 `derived` table).

A cache is the snapshot of a read model sealed with AES-GCM under the cache key
(HKDF(K_vault, "mo.cache.v1"), never exported or synced). The AAD is canonical
CBOR of {format version, projection name, scope, cursor G, cursor C}, so a
cache moved to another projection or store, or paired with another cursor,
fails authentication. Stored bytes: canonical CBOR {"v": format, "ct": sealed}.

A cache that fails authentication, carries an unknown format or cannot be
decoded is never trusted: it is dropped and the caller rebuilds from the log.
"""

from __future__ import annotations

import logging

from mo_local.crypto import cbor
from mo_local.crypto.errors import AuthenticationFailed, EncodingError
from mo_local.crypto.vault import UnlockedVault
from mo_local.derived.readmodel import ReadModel
from mo_local.derived.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from mo_local.store.errors import StoreCorrupt
from mo_local.store.eventstore import EventStore
from mo_local.store.records import Cursor

CACHE_FORMAT = 1
READ_MODEL = "readmodel"
# Far above any real snapshot (~100 bytes per aggregate) yet bounded.
MAX_CACHE_BYTES = 1 << 30
_CACHE_KEY_PURPOSE = "cache"  # UnlockedVault.cache_key() is the sub-key of this purpose

log = logging.getLogger(__name__)


def cache_aad(format_version: int, name: str, scope: str, cursor: Cursor) -> bytes:
    """Canonical CBOR binding a cache to its format, projection, scope and cursor."""
    return cbor.encode(
        {
            "v": format_version,
            "projection": name,
            "scope": scope,
            "g": cursor.synced,
            "c": cursor.committed,
        }
    )


def seal_cache(
    vault: UnlockedVault,
    name: str,
    scope: str,
    cursor: Cursor,
    plaintext: bytes,
    format_version: int = CACHE_FORMAT,
) -> bytes:
    """The stored bytes of a cache: versioned CBOR around the sealed plaintext."""
    sealed = vault.aead(_CACHE_KEY_PURPOSE).seal(
        plaintext, cache_aad(format_version, name, scope, cursor)
    )
    return cbor.encode({"v": format_version, "ct": sealed})


def open_cache(vault: UnlockedVault, name: str, scope: str, cursor: Cursor, blob: bytes) -> bytes:
    """The plaintext of a cache; EncodingError or AuthenticationFailed if not trustworthy."""
    outer = cbor.decode(blob, max_size=MAX_CACHE_BYTES, max_depth=2)
    fields = cbor.expect_map(outer, frozenset({"v", "ct"}), "derived cache")
    version = cbor.field_int(fields, "v", "derived cache")
    if version != CACHE_FORMAT:
        raise EncodingError("unknown derived cache format")
    sealed = cbor.field_bytes(fields, "ct", "derived cache")
    return vault.aead(_CACHE_KEY_PURPOSE).open(sealed, cache_aad(version, name, scope, cursor))


def save(
    store: EventStore,
    vault: UnlockedVault,
    scope: str,
    model: ReadModel,
    cursor: Cursor,
    name: str = READ_MODEL,
) -> None:
    """Seal the read model under the cache key and store it with its cursor."""
    blob = seal_cache(vault, name, scope, cursor, encode_snapshot(model))
    store.save_derived(name, scope, cursor, blob)


def load(
    store: EventStore, vault: UnlockedVault, scope: str, name: str = READ_MODEL
) -> tuple[ReadModel, Cursor] | None:
    """The cached read model and its cursor; None (and the cache dropped) if absent or bad."""
    try:
        row = store.load_derived(name, scope)
    except StoreCorrupt:
        # The derived row itself is damaged (e.g. a cursor that is not a number);
        # dropping it is safe, and a damaged log will be reported by the replay.
        _drop(store, name, "row is malformed")
        return None
    if row is None:
        return None
    cursor, blob = row
    problem: str
    try:
        return decode_snapshot(open_cache(vault, name, scope, cursor, blob)), cursor
    except AuthenticationFailed:
        problem = "failed authentication"
    except EncodingError:
        problem = "has an unknown format or is malformed"
    except SnapshotError:
        problem = "holds an unreadable snapshot"
    _drop(store, name, problem)
    return None


def _drop(store: EventStore, name: str, problem: str) -> None:
    # Only the projection name and a fixed phrase are logged: no content, no key.
    log.warning("derived cache %s %s; dropping it and rebuilding from the log", name, problem)
    store.clear_derived()
