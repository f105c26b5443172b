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
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Final, Protocol, cast

from mo_local.app.ports import CommandResult, EventMeta
from mo_local.crypto import cbor
from mo_local.crypto.errors import CryptoError
from mo_local.crypto.primitives import Aead
from mo_local.domain.errors import ConcurrencyError, NotFound
from mo_local.domain.events import DomainEvent
from mo_local.domain.fold import fold, step_any
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project
from mo_local.domain.registry import decode_event, encode_event
from mo_local.eventlog import EncryptedLog, Envelope, OpenedEvent
from mo_local.store.errors import ConcurrencyError as StoreConcurrencyError

IDEMPOTENCY_FORMAT = 1
_LOADED_CACHE_SIZE = 512


State = Goal | Project | None
_UNFOLDED: Final = object()  # a state not folded yet


class KnownState(Protocol):
    """An aggregate as a read model that has folded every event of the log holds it.

    `version` 0 means the log holds no event of the aggregate (its type is then
    meaningless: an unused id may still become either type).
    """

    @property
    def aggregate_type(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def version(self) -> int: ...


# Asked before the log: the aggregate's current state, or None when the asker
# cannot vouch for being current (the log is read and folded then).
StateSource = Callable[[str], KnownState | None]


class _Decoded:
    """One aggregate's decoded events and, once asked for, their folded state."""

    __slots__ = ("aggregate_type", "events", "state")

    def __init__(self, aggregate_type: str, events: list[DomainEvent]) -> None:
        self.aggregate_type = aggregate_type
        self.events = events
        self.state: State | object = _UNFOLDED

    def advance(self, events: Sequence[DomainEvent]) -> None:
        """Take events appended after these: one total step each, as the fold does."""
        self.events.extend(events)
        state = self.state
        if state is _UNFOLDED:
            return
        for event in events:
            state = step_any(self.aggregate_type, cast(State, state), event)[0]
        self.state = state


class EncryptedRepository:
    """Loads and appends domain events through the encrypted log.

    With `keep_written`, every successful `append` also records the event rows it
    wrote (with their commit seqs) next to the envelopes it sealed, in commit
    order, until `take_written`: a read model can then fold them without reading
    or decrypting them again (Projector.follow). The rows count as written only
    once the caller's transaction has committed; the caller knows when that is.
    """

    def __init__(
        self,
        log: EncryptedLog,
        *,
        keep_written: bool = False,
        state_source: StateSource | None = None,
    ):
        self.log = log
        self._state_source = state_source
        self._idem_key = log.vault.subkey("idempotency")
        self._idem_aead = Aead(log.vault.subkey("idempotency-record"))
        # Decoded events (and their folded state) of recently used aggregates; dropped
        # whenever something other than this object writes to the log (sync, rebase,
        # restore) or a command fails after its append (see _Session).
        self._loaded: OrderedDict[str, _Decoded] = OrderedDict()
        self._written: list[OpenedEvent] | None = [] if keep_written else None

    def take_written(self) -> list[OpenedEvent]:
        """The events appended since the last call, in commit order (see the class doc)."""
        written = self._written
        if not written:
            return []
        self._written = []
        return written

    def discard_written(self) -> None:
        """Forget the recorded events (their transaction did not commit, or may not have)."""
        if self._written:
            self._written = []

    def forget_loaded(self) -> None:
        """Drop decoded aggregates (after sync or any write that bypassed this object)."""
        self._loaded.clear()

    def load(self, aggregate_type: str, aggregate_id: str) -> list[DomainEvent]:
        """All events of the aggregate in version order ([] if none)."""
        return list(self._decoded(aggregate_type, aggregate_id).events)

    def load_state(self, aggregate_type: str, aggregate_id: str) -> tuple[State, int]:
        """The aggregate's state folded totally from its events, and its version.

        Taken from the `state_source` when it vouches for it (a read model that has
        folded every event: the same total reducers over the same events, so the same
        state, without reading or decrypting anything). Otherwise folded once per
        aggregate and then advanced event by event as this object appends, so a
        command costs the same on a long aggregate as on a short one.
        """
        if self._state_source is not None:
            known = self._state_source(aggregate_id)
            if known is not None:
                if known.version == 0:
                    return None, 0
                if known.aggregate_type != aggregate_type:
                    raise NotFound(aggregate_type, aggregate_id)
                return known.state, known.version
        decoded = self._decoded(aggregate_type, aggregate_id)
        if decoded.state is _UNFOLDED:
            decoded.state = fold(aggregate_type, decoded.events)[0]
        return cast(State, decoded.state), len(decoded.events)

    def _decoded(self, aggregate_type: str, aggregate_id: str) -> _Decoded:
        cached = self._loaded.get(aggregate_id)
        if cached is not None:
            if cached.aggregate_type == aggregate_type:
                self._loaded.move_to_end(aggregate_id)
                return cached
            if cached.events:  # as when reading the log: the id is another type's
                raise NotFound(aggregate_type, aggregate_id)
            del self._loaded[aggregate_id]  # an unused id may still become either type
        events: list[DomainEvent] = []
        for opened in self.log.read_aggregate(aggregate_id):
            if opened.aggregate_type != aggregate_type:
                raise NotFound(aggregate_type, aggregate_id)
            env = opened.envelope
            events.append(decode_event(env.event_type, env.payload_version, env.data))
        decoded = _Decoded(aggregate_type, events)
        self._loaded[aggregate_id] = decoded
        while len(self._loaded) > _LOADED_CACHE_SIZE:
            self._loaded.popitem(last=False)
        return decoded

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
                rows = self.log.append(aggregate_type, aggregate_id, expected_version, envelopes)
                if idempotency is not None:
                    key, fingerprint, result = idempotency
                    store.put_idempotency(
                        self._hash_key(key), b"", self._seal_result(key, fingerprint, result)
                    )
        except StoreConcurrencyError as exc:
            self._loaded.pop(aggregate_id, None)
            raise ConcurrencyError(aggregate_id, expected_version, exc.actual) from exc
        if self._written is not None:
            self._written.extend(map(OpenedEvent, rows, envelopes))
        cached = self._loaded.get(aggregate_id)
        if (
            cached is not None
            and cached.aggregate_type == aggregate_type
            and len(cached.events) == expected_version
        ):
            cached.advance(events)
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
        """One unit of work on the store: all or nothing (EventStore.unit).

        The command handler lets every error leave the block, as a unit requires,
        so the steps inside need no savepoints of their own.
        """
        return self.log.store.unit()

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
