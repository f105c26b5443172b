"""The application's `EventLog` port on the encrypted SQLite log.

Domain events become envelopes, envelopes become sealed records. Idempotency
records are kept opaque: the key is stored as an HMAC under a vault sub-key, and
the fingerprint and result are encrypted, so a stolen database shows neither
command contents nor which commands were retried.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from mo_local.app.ports import CommandResult, EventMeta
from mo_local.crypto import cbor
from mo_local.crypto.errors import CryptoError
from mo_local.crypto.primitives import Aead
from mo_local.domain.errors import ConcurrencyError, NotFound
from mo_local.domain.events import DomainEvent
from mo_local.domain.registry import decode_event, encode_event
from mo_local.eventlog import EncryptedLog, Envelope
from mo_local.store.errors import ConcurrencyError as StoreConcurrencyError

IDEMPOTENCY_FORMAT = 1
_LOADED_CACHE_SIZE = 512


class EncryptedRepository:
    """Loads and appends domain events through the encrypted log."""

    def __init__(self, log: EncryptedLog):
        self.log = log
        self._idem_key = log.vault.subkey("idempotency")
        self._idem_aead = Aead(log.vault.subkey("idempotency-record"))
        # Decoded events of recently used aggregates; dropped whenever something
        # other than this object writes to the log (sync, rebase, restore).
        self._loaded: OrderedDict[str, list[DomainEvent]] = OrderedDict()

    def forget_loaded(self) -> None:
        """Drop decoded aggregates (after sync or any write that bypassed this object)."""
        self._loaded.clear()

    def load(self, aggregate_type: str, aggregate_id: str) -> list[DomainEvent]:
        """All events of the aggregate in version order ([] if none)."""
        cached = self._loaded.get(aggregate_id)
        if cached is not None:
            self._loaded.move_to_end(aggregate_id)
            return list(cached)
        events: list[DomainEvent] = []
        for opened in self.log.read_aggregate(aggregate_id):
            if opened.aggregate_type != aggregate_type:
                raise NotFound(aggregate_type, aggregate_id)
            env = opened.envelope
            events.append(decode_event(env.event_type, env.payload_version, env.data))
        self._remember(aggregate_id, events)
        return list(events)

    def _remember(self, aggregate_id: str, events: list[DomainEvent]) -> None:
        self._loaded[aggregate_id] = events
        self._loaded.move_to_end(aggregate_id)
        while len(self._loaded) > _LOADED_CACHE_SIZE:
            self._loaded.popitem(last=False)

    def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        meta: EventMeta,
        idempotency: tuple[str, str, CommandResult] | None = None,
    ) -> int:
        """Append atomically with the idempotency record; ConcurrencyError when stale."""
        envelopes = []
        for event in events:
            event_type, payload_version, data = encode_event(event)
            envelopes.append(
                Envelope(
                    event_type,
                    payload_version,
                    data,
                    meta.occurred_at,
                    meta.actor,
                    self.log.device_id,
                    meta.causation_id,
                    meta.correlation_id,
                )
            )
        store = self.log.store
        try:
            with store.transaction():
                self.log.append(aggregate_type, aggregate_id, expected_version, envelopes)
                if idempotency is not None:
                    key, fingerprint, result = idempotency
                    store.put_idempotency(
                        self._hash_key(key), b"", self._seal_result(key, fingerprint, result)
                    )
        except StoreConcurrencyError as exc:
            self._loaded.pop(aggregate_id, None)
            raise ConcurrencyError(aggregate_id, expected_version, exc.actual) from exc
        cached = self._loaded.get(aggregate_id)
        if cached is not None and len(cached) == expected_version:
            cached.extend(events)
        else:
            self._loaded.pop(aggregate_id, None)
        return expected_version + len(events)

    def find_idempotent(self, key: str) -> tuple[str, CommandResult] | None:
        """(fingerprint, result) recorded under the key, if any."""
        row = self.log.store.get_idempotency(self._hash_key(key))
        if row is None:
            return None
        return self._open_result(key, row[1])

    def transaction(self) -> AbstractContextManager[None]:
        """One unit of work on the store."""
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.log.store.transaction():
            yield

    # -- idempotency records ---------------------------------------------------

    def _hash_key(self, key: str) -> bytes:
        return hmac.new(self._idem_key, key.encode("utf-8"), hashlib.sha256).digest()

    def _aad(self, key: str) -> bytes:
        return cbor.encode(
            {"v": IDEMPOTENCY_FORMAT, "store": self.log.store_id, "key": self._hash_key(key)}
        )

    def _seal_result(self, key: str, fingerprint: str, result: CommandResult) -> bytes:
        body = cbor.encode(
            {
                "fp": fingerprint,
                "id": result.aggregate_id,
                "version": result.version,
                "created": result.created_id,
            }
        )
        return self._idem_aead.seal(body, self._aad(key))

    def _open_result(self, key: str, blob: bytes) -> tuple[str, CommandResult]:
        try:
            body = cbor.decode(self._idem_aead.open(blob, self._aad(key)))
        except CryptoError as exc:
            raise CryptoError("an idempotency record failed authentication") from exc
        if not isinstance(body, dict):
            raise CryptoError("an idempotency record is malformed")
        fingerprint, aggregate_id = body.get("fp"), body.get("id")
        version, created = body.get("version"), body.get("created")
        if not (
            isinstance(fingerprint, str)
            and isinstance(aggregate_id, str)
            and isinstance(version, int)
            and (created is None or isinstance(created, str))
        ):
            raise CryptoError("an idempotency record is malformed")
        return fingerprint, CommandResult(aggregate_id, version, created)
