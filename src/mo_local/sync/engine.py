"""The client sync engine: pull and apply, rebase pending events, push (DESIGN.md §7).

Pull applies the server's records in global order, one local transaction per
page, and advances the cursor only to what was applied and committed. A pulled
event that takes the (aggregate, version) of a pending local event shifts that
aggregate's pending events up by one, re-sealed for their new versions with the
same event ids and plaintext (INV-010); synced events are never touched
(INV-001, enforced again by the store's triggers). Push sends pending records in
commit order, re-read from the database on every try (INV-018), with the cursor
as the expected head, so the server accepts them only on top of everything this
device has applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Literal, TypeVar

from mo_local.crypto.errors import AuthenticationFailed, EncodingError
from mo_local.crypto.records import KIND_EVENT, KIND_KEY, Dek, RecordHeader, open_event_payload
from mo_local.eventlog import EncryptedLog, EventLogError
from mo_local.store.errors import InvalidArgument
from mo_local.store.eventstore import EventStore
from mo_local.store.records import NewEvent, StoredEvent
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.errors import (
    RemoteRefused,
    RemoteUnreachable,
    ServerAhead,
    ServerBehind,
    SyncCorrupt,
)
from mo_local.sync.remote import RemoteState
from mo_local.sync.transport import (
    OutgoingRecord,
    PulledRecord,
    PullPage,
    PushResult,
    RecordTransport,
)

log = logging.getLogger("mo_local.sync")

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 500
DEFAULT_PUSH_RECORDS = 500
# Raw bytes per push; base64 makes the body about 4/3 of it, under the server's 8 MiB.
DEFAULT_PUSH_BYTES = 4 * 1024 * 1024
DEFAULT_AHEAD_ROUNDS = 20


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: events pushed and pulled, and the server head afterwards."""

    pushed: int
    pulled: int
    head: int


@dataclass(frozen=True)
class _Checked:
    """A pulled record that passed verification, with what applying it means."""

    pulled: PulledRecord
    action: Literal["insert", "mark", "replace", "skip"]
    kind: str
    row: NewEvent | None = None


class SyncEngine:
    """Pulls, rebases and pushes the records of one store against one server."""

    def __init__(
        self,
        client_store: EventStore,
        log: EncryptedLog,
        transport: RecordTransport,
        store_id: str,
        on_remote_events: Callable[[], None],
        *,
        retry: RetryPolicy | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        push_records: int = DEFAULT_PUSH_RECORDS,
        push_bytes: int = DEFAULT_PUSH_BYTES,
        ahead_rounds: int = DEFAULT_AHEAD_ROUNDS,
    ):
        self.store = client_store
        self.log = log
        self.transport = transport
        self.store_id = store_id
        self.on_remote_events = on_remote_events
        self.state = RemoteState(client_store)
        self.retry = retry if retry is not None else RetryPolicy()
        self.page_size = page_size
        self.push_records = push_records
        self.push_bytes = push_bytes
        self.ahead_rounds = ahead_rounds
        if page_size < 2:
            raise ValueError("a pull page holds at least 2 records (one overlaps the cursor)")
        self._pulled = 0  # events applied by pulls, also those run inside push()
        self._replay: list[str] | None = None
        self._deks: dict[str, Dek] = {}
        self._replay_done = 0

    # -- the whole round ------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Pull everything, then push every pending event."""
        before = self._pulled
        self.pull()
        pushed = self.push()
        return SyncResult(pushed, self._pulled - before, self.state.last_head)

    def reset(self) -> int:
        """Forget sync mappings, cursor and last head (server lost data); returns pending count."""
        return self.state.reset()

    # -- retries --------------------------------------------------------------------

    def _with_retry(self, call: Callable[[], T]) -> T:
        failures = 0
        while True:
            try:
                return call()
            except RemoteUnreachable:
                failures += 1
                if failures >= self.retry.attempts:
                    raise
                log.info("sync: server unreachable, retry %d of %d", failures,
                         self.retry.attempts - 1)
                self.retry.pause(failures)

    def _behind_check(self, head: int) -> None:
        seen = self.state.last_head
        if head < seen:
            raise ServerBehind(head, seen)

    # -- pull -----------------------------------------------------------------------

    def pull(self, wait: float = 0.0) -> int:
        """Apply every record after the cursor; returns the events applied.

        Only the first page long-polls (`wait` seconds) — later pages exist already.
        """
        applied = 0
        try:
            while True:
                since, tip = self.state.cursor, self.state.tip
                # Ask for the record at our cursor too: if the server holds another event
                # there, its history changed under us (restored or replaced) — refuse.
                overlap = since > 0 and tip is not None
                page = self._with_retry(partial(
                    self.transport.pull, self.store_id, since - 1 if overlap else since,
                    self.page_size, wait))
                wait = 0.0
                self._behind_check(page.head)
                if overlap:
                    page = self._strip_overlap(since, tip, page)
                count, error = self._apply_page(since, page)
                applied += count
                self._pulled += count
                if error is not None:
                    raise error
                if not page.has_more or not page.records:
                    break
        finally:
            if applied:
                log.info("sync: applied %d remote events", applied)
                self.on_remote_events()
        return applied

    def _strip_overlap(self, since: int, tip: str | None, page: PullPage) -> PullPage:
        first = page.records[0] if page.records else None
        if first is None or first.seq != since or first.event_id != tip:
            raise ServerBehind(page.head, self.state.last_head, changed_at=since)
        return PullPage(page.records[1:], page.head, page.has_more)

    def _apply_page(self, since: int, page: PullPage) -> tuple[int, SyncCorrupt | None]:
        checked, error = self._verify(since, page)
        applied = 0
        with self.store.transaction():
            cursor, tip = since, self.state.tip
            for item in checked:
                try:
                    self._apply(item)
                except SyncCorrupt as exc:
                    error = exc
                    break
                cursor, tip = item.pulled.seq, item.pulled.event_id
                if item.action != "skip" and item.kind == KIND_EVENT:
                    applied += 1
            self.state.set_position(cursor, max(self.state.last_head, page.head), tip)
        return applied, error

    def _verify(self, since: int, page: PullPage) -> tuple[list[_Checked], SyncCorrupt | None]:
        """Authenticate the page's records in order, stopping at the first bad one."""
        checked: list[_Checked] = []
        previous = since
        for pulled in page.records:
            if not previous < pulled.seq <= page.head:
                return checked, SyncCorrupt("arrived out of order", pulled.seq, pulled.event_id)
            previous = pulled.seq
            try:
                checked.append(self._check(pulled))
            except SyncCorrupt as exc:
                return checked, exc
        return checked, None

    def _check(self, pulled: PulledRecord) -> _Checked:
        local = self.store.get_event(pulled.event_id)
        if local is None:
            row, _ = self._authenticate(pulled)
            return _Checked(pulled, "insert", row.kind, row)
        if local.record == pulled.record:
            # Our own record coming back (its acknowledgement was lost, or after a reset).
            if local.global_seq is None:
                return _Checked(pulled, "mark", local.kind)
            if local.global_seq == pulled.seq:
                return _Checked(pulled, "skip", local.kind)
            raise SyncCorrupt(f"is already synced here at sequence {local.global_seq}",
                              pulled.seq, pulled.event_id)
        if local.global_seq is not None:
            raise SyncCorrupt("differs from this device's synced copy of the same event (if "
                              "the server was restored from a backup, run `mo sync reset`)",
                              pulled.seq, pulled.event_id)
        # A pending event of ours that another device re-sealed for another version
        # and pushed first (after a server restore): the synced copy wins, provided it
        # is the same event — same routing and the same plaintext (INV-010).
        row, payload = self._authenticate(pulled)
        same = (row.kind, row.aggregate_type, row.aggregate_id, row.key_id) == (
            local.kind, local.aggregate_type, local.aggregate_id, local.key_id)
        if not same or row.kind != KIND_EVENT or payload != self._payload(local):
            raise SyncCorrupt("reuses the id of another event of this device",
                              pulled.seq, pulled.event_id)
        return _Checked(pulled, "replace", row.kind, row)

    def _dek(self, key_id: str) -> Dek:
        dek = self._deks.get(key_id)
        if dek is None:
            key_row = self.store.key_record(key_id)
            if key_row is None:
                raise EventLogError(f"no key record for key {key_id}")
            dek = self._deks[key_id] = self.log.install_key_record(key_row)
        return dek

    def _payload(self, row: StoredEvent) -> bytes:
        header = RecordHeader(row.kind, row.aggregate_type, row.aggregate_id, row.version,
                              row.key_id)
        try:
            return open_event_payload(self.store_id, row.event_id, header, self._dek(row.key_id),
                                      row.record)
        except (AuthenticationFailed, EncodingError) as exc:
            raise EventLogError(f"event {row.event_id} failed authentication") from exc

    def _authenticate(self, pulled: PulledRecord) -> tuple[NewEvent, bytes]:
        """Open a pulled record's header and payload; every routing field is in the AAD."""
        probe = StoredEvent(0, pulled.seq, pulled.event_id, "", "", "", 0, "", pulled.record)
        try:
            header = self.log.verify_header(probe)
            row = NewEvent(pulled.event_id, header.kind, header.aggregate_type,
                           header.aggregate_id, header.version, header.key_id, pulled.record)
            stored = StoredEvent(0, pulled.seq, row.event_id, row.kind, row.aggregate_type,
                                 row.aggregate_id, row.version, row.key_id, row.record)
            if row.kind == KIND_KEY:
                self._deks[row.key_id] = self.log.install_key_record(stored)
                return row, b""
            return row, self._payload(stored)
        except (EventLogError, InvalidArgument):
            raise SyncCorrupt("failed authentication", pulled.seq, pulled.event_id) from None

    def _apply(self, item: _Checked) -> None:
        seq, event_id = item.pulled.seq, item.pulled.event_id
        if item.action == "mark":
            self.store.mark_synced(event_id, seq)
            return
        if item.action == "skip" or item.row is None:
            return
        row = item.row
        if item.action == "replace":
            current = self.store.get_event(event_id)
            if current is None or current.synced or current.version != row.version:
                raise SyncCorrupt(f"holds version {row.version}, which this device gave "
                                  "to another event", seq, event_id)
            self.store.rewrite_pending(event_id, row.version, row.record)
            self.store.mark_synced(event_id, seq)
            log.info("sync: took the server's copy of a pending event sealed elsewhere")
            return
        if row.kind == KIND_EVENT:
            self._make_room(row, seq)
        self.store.insert_remote(row, seq)

    def _make_room(self, row: NewEvent, seq: int) -> None:
        """Shift this aggregate's pending events up if the pulled event takes their version."""
        later = list(self.store.read_aggregate(row.aggregate_id, after_version=row.version - 1))
        if not later or later[0].version != row.version:
            return
        synced = [e for e in later if e.synced]
        if synced:
            raise SyncCorrupt(
                f"takes version {row.version} of an aggregate whose event "
                f"{synced[0].event_id} is already synced there",
                seq, row.event_id,
            )
        # Highest version first, so no two rows ever hold the same (aggregate, version).
        for pending in reversed(later):
            record = self.log.reseal_for_version(pending, pending.version + 1)
            self.store.rewrite_pending(pending.event_id, pending.version + 1, record)
        log.info("sync: rebased %d pending events of one aggregate", len(later))

    # -- push -----------------------------------------------------------------------

    def push(self) -> int:
        """Push every pending record in commit order; returns the events pushed."""
        pushed = 0
        ahead = 0
        while True:
            try:
                outcome = self._with_retry(self._push_once)
            except ServerAhead:
                ahead += 1
                if ahead > self.ahead_rounds:
                    raise
                if ahead > 1:
                    # Several devices racing for the same head: back off with jitter so
                    # one of them wins each round instead of all pulling in lock-step.
                    self.retry.pause(ahead - 1)
                self.pull()
                continue
            except ServerBehind as exc:
                raise ServerBehind(exc.head, self.state.last_head) from None
            if outcome is None:
                return pushed
            pushed += outcome

    def _replay_rows(self) -> Iterator[StoredEvent] | None:
        """Still-pending events of the replay order (see `RemoteState.reset`); None when done."""
        if self._replay is None:
            self._replay = self.state.replay_order
        order = self._replay
        while self._replay_done < len(order):
            row = self.store.get_event(order[self._replay_done])
            if row is not None and row.global_seq is None:
                break
            self._replay_done += 1
        else:
            if order:
                self.state.clear_replay_order()
                self._replay = []
            return None
        rows = (self.store.get_event(event_id) for event_id in order[self._replay_done:])
        return (row for row in rows if row is not None and row.global_seq is None)

    def _pending_batch(self) -> list[StoredEvent]:
        """The next pending records to push, read from the database now (INV-018)."""
        batch: list[StoredEvent] = []
        size = 0
        rows = self._replay_rows()
        if rows is None:
            rows = self.store.pending(batch_size=self.push_records)
        for row in islice(rows, self.push_records):
            if batch and size + len(row.record) > self.push_bytes:
                break
            batch.append(row)
            size += len(row.record)
        return batch

    def _push_once(self) -> int | None:
        """One push of the next pending batch."""
        batch = self._pending_batch()
        if not batch:
            return None
        expected = self.state.cursor
        result = self.transport.push(
            self.store_id, expected, [OutgoingRecord(r.event_id, r.record) for r in batch]
        )
        self._acknowledge(expected, batch, result)
        return sum(1 for r in batch if r.kind == KIND_EVENT)

    def _acknowledge(self, expected: int, batch: Sequence[StoredEvent],
                     result: PushResult) -> None:
        self._behind_check(result.head)
        seqs = []
        for row in batch:
            seq = result.assigned.get(row.event_id)
            if seq is None or not 0 < seq <= result.head:
                raise RemoteRefused(200, "malformed_response",
                                    "the push acknowledgement misses a record")
            seqs.append(seq)
        with self.store.transaction():
            for row, seq in zip(batch, seqs, strict=True):
                self.store.mark_synced(row.event_id, seq)
            # The cursor may jump to the head only if everything in between is ours;
            # otherwise the next pull fetches the rest (our own records are skipped).
            cursor, tip = expected, self.state.tip
            if sorted(seqs) == list(range(expected + 1, result.head + 1)):
                cursor = result.head
                tip = next(r.event_id for r, s in zip(batch, seqs, strict=True) if s == cursor)
            self.state.set_position(cursor, max(self.state.last_head, result.head), tip)
