"""The client sync engine: pull and apply, rebase pending events, push (DESIGN.md §7).

Pull applies the server's records in global order, in local transactions of a
few pages (the next page is fetched while one is applied), and advances the
cursor only to what was applied and committed. A pulled event that takes the
(aggregate, version) of a pending local event shifts that aggregate's pending
events up by one, re-sealed for their new versions with the
same event ids and plaintext (INV-010); synced events are never touched
(INV-001, enforced again by the store's triggers). Push sends pending records in
commit order, re-read from the database on every try (INV-018), with the cursor
as the expected head, so the server accepts them only on top of everything this
device has applied; the next batch goes out while one is being recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Literal, NamedTuple, Protocol, TypeVar

from mo_local.crypto.errors import AuthenticationFailed, CryptoError, EncodingError
from mo_local.crypto.records import (
    KIND_EVENT,
    KIND_KEY,
    Dek,
    PulledRecordOpener,
    RecordHeader,
    open_event_payload,
)
from mo_local.eventlog import EncryptedLog, Envelope, EventLogError, OpenedEvent
from mo_local.store.errors import InvalidArgument
from mo_local.store.eventstore import EventStore
from mo_local.store.records import Cursor, NewEvent, StoredEvent
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
    encode_bytes,
)
from mo_local.sync.verifier import ForkFolder, PageVerifier, Verdict

log = logging.getLogger("mo_local.sync")

T = TypeVar("T")

# The server's default limits (records per pull page and per push). Every page costs
# a round trip and a durable (fsync'd) local commit, so fewer, fuller pages sync faster.
DEFAULT_PAGE_SIZE = 1000
DEFAULT_PUSH_RECORDS = 1000
# Raw bytes per push; base64 makes the body about 4/3 of it, under the server's 8 MiB.
DEFAULT_PUSH_BYTES = 4 * 1024 * 1024
DEFAULT_AHEAD_ROUNDS = 20
# Pulled records applied in one local transaction at most (several pages): every
# commit is durable (synchronous=FULL) and rewrites the index pages it touched.
DEFAULT_GROUP_RECORDS = 10_000


class PullFollower(ForkFolder, Protocol):
    """Derived state that can fold pulled events as they are applied (the projector)."""

    @property
    def cursor(self) -> Cursor:
        """The effective-order cursor of what is folded."""
        ...

    def covers_all(self) -> bool:
        """True iff every event in the store is already folded."""
        ...

    def follow(self, events: Sequence[OpenedEvent]) -> bool:
        """Fold events just committed right after the folded ones; False applies nothing."""
        ...

    def adopt_forked(self, state: bytes, cursor: Cursor) -> bool:
        """Install what a forked child folded (`forked_state`) if it ends at `cursor`."""
        ...


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: events pushed and pulled, and the server head afterwards."""

    pushed: int
    pulled: int
    head: int


class _Checked(NamedTuple):
    """A pulled record that passed verification, with what applying it means."""

    pulled: PulledRecord
    action: Literal["insert", "mark", "replace", "skip"]
    kind: str
    row: NewEvent | None = None
    payload: bytes = b""  # an event's authenticated envelope bytes
    elsewhere: bool = False  # authenticated by the verifier (which holds the payload too)


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
        group_records: int = DEFAULT_GROUP_RECORDS,
        follower: PullFollower | None = None,
        verify_in_parallel: bool = True,
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
        self.group_records = group_records
        if page_size < 2:
            raise ValueError("a pull page holds at least 2 records (one overlaps the cursor)")
        self._pulled = 0  # events applied by pulls, also those run inside push()
        self._pushed = 0  # events pushed and recorded
        self._acked = 0  # push acknowledgements recorded
        self._replay: list[str] | None = None
        self._deks: dict[str, Dek] = {}
        self._opener = PulledRecordOpener(log.vault, store_id)
        self._replay_done = 0
        self.follower = follower
        # Large pulls authenticate pages on a second core (sync/verifier.py).
        self.verify_in_parallel = verify_in_parallel
        self._verifier: PageVerifier | None = None
        self.verified_elsewhere = 0  # records the verifier authenticated (diagnostics)
        # While pulling with a follower: events committed by the current group, with
        # their envelope bytes, folded once the group's transaction has committed
        # (row, global seq, commit seq, payload, verified elsewhere).
        self._following: list[tuple[NewEvent, int, int, bytes, bool]] | None = None
        self._follow_floor = 0
        # Folding happens in the verifier's child (which holds the plaintext) up to
        # this sequence; 0 while nothing was handed to it.
        self._folded_in_child = 0
        self._fold_in_child = False

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

    def _with_retry(self, call: Callable[[], T], progress: Callable[[], int] | None = None) -> T:
        """`call()`, tried again after network failures with back-off.

        `progress` counts steps `call` completes before it fails: a failure after
        progress starts a fresh count, as a new call would.
        """
        failures = 0
        while True:
            done = progress() if progress is not None else 0
            try:
                return call()
            except RemoteUnreachable:
                if progress is not None and progress() != done:
                    failures = 0
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
        While a page is applied the next one is already being fetched (on a worker
        thread; it is used only if this page applies completely), and consecutive
        pages share one local transaction up to `group_records` records: each commit
        is durable, and fewer of them write fewer index pages. A record that fails
        verification, or a failed fetch, keeps what was applied before it committed,
        with the cursor on its last record; a store error rolls back the group being
        applied (as a crash would: its records are pulled again next time).
        """
        applied = 0
        failure: Exception | None = None
        self._start_following()
        try:
            with self.store.large_cache(), _Background() as background:
                since, tip = self.state.cursor, self.state.tip
                page: PullPage | None = self._received(
                    since, tip, self._fetch(since, tip, wait))
                if page is not None and page.has_more:
                    self._start_verifier(page)
                while page is not None:
                    grouped = group_events = 0
                    # A store error raised while applying rolls the whole group back
                    # (as a crash would); a bad record or a failed fetch commits it first.
                    with self.store.transaction():
                        while True:
                            last = page.records[-1] if page.records else None
                            following = None
                            if page.has_more and last is not None:
                                following = background.submit(
                                    self._fetch, last.seq, last.event_id, 0.0)
                            count, failure = self._apply_page(since, page)
                            group_events += count
                            grouped += len(page.records)
                            if failure is not None or following is None or last is None:
                                page = None
                                break
                            since, tip = last.seq, last.event_id
                            try:
                                page = self._received(since, tip, following.result())
                            except Exception as exc:  # noqa: BLE001 - raised below
                                failure, page = exc, None
                                break
                            if grouped >= self.group_records:
                                break  # the page received opens the next group
                    self._fold_group()  # committed: derived state may follow
                    applied += group_events
                    self._pulled += group_events
                    if failure is not None:
                        raise failure
                self._adopt_child_fold()
        finally:
            self._stop_verifier()
            self._following = None
            if applied:
                log.info("sync: applied %d remote events", applied)
                self.on_remote_events()
        return applied

    def _start_following(self) -> None:
        """Fold this pull's events into derived state as they commit, if they will append.

        With nothing pending, every pulled event sorts after every local one in
        effective order once its sequence is above the highest synced here; if the
        follower has folded every event, each committed group can then be folded
        from the plaintext just authenticated, without reading or decrypting it
        again. Anything else (a rebase, our own records coming back, a sequence
        at or below that floor) stops following: the caller's catch-up reads
        the rest from the log, as it always did.
        """
        self._following = None
        self._fold_in_child = False
        self._folded_in_child = 0
        follower = self.follower
        if follower is None or self.store.count_pending() or not follower.covers_all():
            return
        self._following = []
        self._follow_floor = self.store.effective_head().synced

    def _fold_group(self) -> None:
        """Hand the events the group just committed to the follower (or to the child)."""
        following, follower = self._following, self.follower
        if not following or follower is None:
            return
        if self._fold_in_child:
            verifier = self._verifier
            if verifier is None or not verifier.active:
                # What the child folded is lost with it; the catch-up reads it all.
                self._following = None
                return
            if not all(elsewhere for *_, elsewhere in following):
                # An event opened here (its key came in an earlier pull): the child
                # lacks its plaintext. Sending it would make the fold message large,
                # and a large write could block against the child's answers; the
                # catch-up after the pull reads these events from the log instead.
                self._following = None
                return
            through = following[-1][1]
            verifier.fold(through, [])
            self._folded_in_child = through
            following.clear()
            return
        events: list[OpenedEvent] = []
        for row, seq, commit_seq, payload, _ in following:
            try:
                envelope = Envelope.from_bytes(payload)
            except EncodingError:
                # The log replay reports an unreadable envelope; leave it to that.
                self._following = None
                return
            stored = StoredEvent(commit_seq, seq, row.event_id, row.kind, row.aggregate_type,
                                 row.aggregate_id, row.version, row.key_id, row.record)
            events.append(OpenedEvent(stored, envelope))
        following.clear()
        if not follower.follow(events):
            self._following = None

    def _adopt_child_fold(self) -> None:
        """After a complete pull, install the read model the child folded."""
        verifier, follower = self._verifier, self.follower
        if (not self._fold_in_child or self._following is None or not self._folded_in_child
                or verifier is None or follower is None):
            return
        state = verifier.finish()
        cursor = Cursor(self._folded_in_child, follower.cursor.committed)
        if state is None or not follower.adopt_forked(state, cursor):
            log.info("sync: derived state is caught up from the log instead")

    def _fetch(self, since: int, tip: str | None, wait: float) -> PullPage:
        """The page after `since` from the server (network only: may run on a worker thread).

        It includes the record at `since` too: if the server holds another event
        there, its history changed under us (restored or replaced) — `_received` refuses.
        With a verifier running, the page (without that record) goes to it at once.
        """
        overlap = since > 0 and tip is not None
        page = self._with_retry(partial(
            self.transport.pull, self.store_id, since - 1 if overlap else since,
            self.page_size, wait))
        verifier = self._verifier
        if verifier is not None:
            records = page.records[1:] if overlap else page.records
            verifier.submit([(r.seq, r.event_id, r.record) for r in records])
        return page

    def _start_verifier(self, page: PullPage) -> None:
        """Fork the page verifier for a pull of several pages (before the fetch thread starts)."""
        if not self.verify_in_parallel:
            return
        # Following, the child also folds what commits; nothing has committed yet.
        folder = self.follower if self._following is not None else None
        verifier = PageVerifier.start(self._opener, folder)
        if verifier is not None:
            self._verifier = verifier
            self._fold_in_child = folder is not None
            verifier.submit([(r.seq, r.event_id, r.record) for r in page.records])

    def _stop_verifier(self) -> None:
        verifier, self._verifier = self._verifier, None
        if verifier is not None:
            self.verified_elsewhere += verifier.verified
            verifier.close()

    def _verdicts(self, page: PullPage) -> list[Verdict] | None:
        """The verifier's verdicts for this page (None: authenticate every record here)."""
        verifier = self._verifier
        if verifier is None:
            return None
        verdicts = verifier.receive(len(page.records))
        if verdicts is None:
            self._stop_verifier()
        return verdicts

    def _received(self, since: int, tip: str | None, page: PullPage) -> PullPage:
        """A fetched page checked against what this store saw, without the overlap record."""
        self._behind_check(page.head)
        if since > 0 and tip is not None:
            page = self._strip_overlap(since, tip, page)
        return page

    def _strip_overlap(self, since: int, tip: str | None, page: PullPage) -> PullPage:
        first = page.records[0] if page.records else None
        if first is None or first.seq != since or first.event_id != tip:
            raise ServerBehind(page.head, self.state.last_head, changed_at=since)
        return PullPage(page.records[1:], page.head, page.has_more)

    def _apply_page(self, since: int, page: PullPage) -> tuple[int, SyncCorrupt | None]:
        """Apply a page's records up to the first bad one, inside the caller's transaction.

        Returns the events applied and the bad record's error. The cursor moves to
        the last record applied. New records of aggregates with nothing to rebase
        are inserted together (`_PagePlan`), the others one by one, in pull order.
        """
        checked, error = self._verify(since, page)
        applied = 0
        cursor, tip = since, self.state.tip
        plan = _PagePlan(self.store, checked)
        batch: list[tuple[NewEvent, int]] = []
        payloads: list[bytes] = []
        elsewhere: list[bool] = []
        for item in checked:
            try:
                row = plan.batched(item)
                if row is not None:
                    batch.append((row, item.pulled.seq))
                    payloads.append(item.payload)
                    elsewhere.append(item.elsewhere)
                else:
                    self._flush(batch, payloads, elsewhere)
                    self._following = None  # not a plain append: catch-up reads the rest
                    self._apply(item)
            except SyncCorrupt as exc:
                error = exc
                break
            cursor, tip = item.pulled.seq, item.pulled.event_id
            if item.action != "skip" and item.kind == KIND_EVENT:
                applied += 1
        self._flush(batch, payloads, elsewhere)
        self.state.set_position(cursor, max(self.state.last_head, page.head), tip)
        return applied, error

    def _flush(self, batch: list[tuple[NewEvent, int]], payloads: list[bytes],
               elsewhere: list[bool]) -> None:
        """Insert the plain new records gathered so far, in pull order."""
        if not batch:
            return
        commit_seqs = self.store.insert_remote_many(batch)
        following = self._following
        if following is not None:
            floor = self._follow_floor
            for (row, seq), commit_seq, payload, checked_elsewhere in zip(
                    batch, commit_seqs, payloads, elsewhere, strict=True):
                if row.kind != KIND_EVENT:
                    continue
                if seq <= floor:
                    self._following = None
                    break
                following.append((row, seq, commit_seq, payload, checked_elsewhere))
        batch.clear()
        payloads.clear()
        elsewhere.clear()

    def _verify(self, since: int, page: PullPage) -> tuple[list[_Checked], SyncCorrupt | None]:
        """Authenticate the page's records in order, stopping at the first bad one."""
        checked: list[_Checked] = []
        previous = since
        verdicts = self._verdicts(page)
        local = self.store.get_events([pulled.event_id for pulled in page.records])
        first_seq: dict[str, int] = {}
        for index, pulled in enumerate(page.records):
            if not previous < pulled.seq <= page.head:
                return checked, SyncCorrupt("arrived out of order", pulled.seq, pulled.event_id)
            previous = pulled.seq
            first = first_seq.setdefault(pulled.event_id, pulled.seq)
            try:
                if first != pulled.seq:
                    # Applied at its first sequence by the time this one is reached.
                    raise SyncCorrupt(f"is already synced here at sequence {first}",
                                      pulled.seq, pulled.event_id)
                checked.append(self._check(pulled, local.get(pulled.event_id),
                                           verdicts[index] if verdicts is not None else None))
            except SyncCorrupt as exc:
                return checked, exc
        return checked, None

    def _check(self, pulled: PulledRecord, local: StoredEvent | None,
               verdict: Verdict = None) -> _Checked:
        if local is None:
            if verdict is not None:
                kind, aggregate_type, aggregate_id, version, key_id, payload = verdict
                if kind == KIND_EVENT and key_id in self._deks:
                    # Authenticated by the verifier with the key this engine holds under
                    # that id (the verifier's came from a key record pulled before it).
                    row = NewEvent(pulled.event_id, kind, aggregate_type, aggregate_id,
                                   version, key_id, pulled.record)
                    return _Checked(pulled, "insert", kind, row, payload, elsewhere=True)
                if kind == KIND_KEY and version == 0:
                    installed = self._install_verified_key(pulled, verdict)
                    if installed is not None:
                        return installed
            row, payload = self._authenticate(pulled)
            return _Checked(pulled, "insert", row.kind, row, payload)
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

    def _install_verified_key(self, pulled: PulledRecord,
                              verdict: tuple[str, str, str, int, str, bytes]) -> _Checked | None:
        """A key record the verifier unwrapped: install its DEK (None: open it here)."""
        _, aggregate_type, aggregate_id, _, key_id, key = verdict
        try:
            dek = Dek(key_id=key_id, key=key)
            row = NewEvent(pulled.event_id, KIND_KEY, aggregate_type, aggregate_id, 0, key_id,
                           pulled.record)
        except (CryptoError, InvalidArgument):
            return None
        self.log.remember_dek(aggregate_id, dek)
        self._deks[key_id] = dek
        return _Checked(pulled, "insert", KIND_KEY, row, elsewhere=True)

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
        event_id = pulled.event_id
        try:
            header, sealed = self._opener.header(event_id, pulled.record)
            row = NewEvent(event_id, header.kind, header.aggregate_type,
                           header.aggregate_id, header.version, header.key_id, pulled.record)
            if row.kind == KIND_KEY:
                dek = self._opener.key(event_id, header, sealed)
                self.log.remember_dek(row.aggregate_id, dek)
                self._deks[row.key_id] = dek
                return row, b""
            return row, self._opener.event_payload(event_id, header, self._dek(row.key_id),
                                                   sealed)
        except (AuthenticationFailed, EncodingError, EventLogError, InvalidArgument):
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
        before = self._pushed
        ahead = 0
        while True:
            try:
                more = self._with_retry(self._push_round, progress=lambda: self._acked)
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
            if not more:
                return self._pushed - before

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

    def _pending_batch(self, after: Sequence[StoredEvent] = ()) -> list[StoredEvent]:
        """The next pending records to push, read from the database now (INV-018).

        `after`, the batch just pushed whose acknowledgement is not recorded yet,
        is skipped; then there is no next batch while the replay order lasts.
        """
        batch: list[StoredEvent] = []
        size = 0
        if after:
            if self._replay:
                return batch
            rows: Iterator[StoredEvent] | None = self.store.pending(
                batch_size=self.push_records, after=after[-1].commit_seq)
        else:
            rows = self._replay_rows()
        if rows is None:
            rows = self.store.pending(batch_size=self.push_records)
        for row in islice(rows, self.push_records):
            if batch and size + len(row.record) > self.push_bytes:
                break
            batch.append(row)
            size += len(row.record)
        return batch

    def _push_round(self) -> bool:
        """Push the pending batches back to back; False if nothing was pending.

        While one batch's acknowledgement is recorded, the next batch — read from
        the database after the acknowledged one — is already on its way (on a
        worker thread), expecting the head the acknowledgement reported. That is
        possible only when the cursor could jump to that head; otherwise the round
        ends and the next one starts over from the database. Acknowledgements are
        recorded in local transactions of up to `group_records` records; a failed
        or refused push commits those recorded before it (the retry re-reads what
        is still pending), a store error rolls its group back (acknowledgements
        lost, which is harmless: INV-008).
        """
        batch = self._pending_batch()
        if not batch:
            return False
        expected = self.state.cursor
        result = self.transport.push(self.store_id, expected, _outgoing(batch))
        ahead: tuple[list[StoredEvent], list[OutgoingRecord]] | None = None
        with self.store.large_cache(), _Background() as background:
            finished = False
            while not finished:
                recorded = 0
                failure: Exception | None = None
                with self.store.transaction():
                    while recorded < self.group_records:
                        try:
                            seqs, cursor, tip = self._acknowledged(expected, batch, result)
                        except Exception as exc:  # noqa: BLE001 - raised below
                            failure = exc
                            break
                        following: list[StoredEvent]
                        outgoing: list[OutgoingRecord]
                        if cursor != result.head:
                            following, outgoing = [], []
                        elif ahead is not None:
                            following, outgoing = ahead
                        else:
                            following = self._pending_batch(after=batch)
                            outgoing = _outgoing(following)
                        ahead = None
                        sent = (background.submit(self.transport.push, self.store_id, cursor,
                                                  outgoing) if following else None)
                        self._record(batch, seqs, cursor, tip, result.head)
                        recorded += len(batch)
                        if sent is None:
                            finished = True
                            break
                        batch, expected = following, cursor
                        # While that push is at the server, read and encode the batch
                        # after it: sent only if its acknowledgement lets the cursor
                        # jump to the head (nothing is written in between: this is
                        # the store's only writer).
                        after = self._pending_batch(after=batch)
                        ahead = (after, _outgoing(after, wire=True))
                        try:
                            result = sent.result()
                        except Exception as exc:  # noqa: BLE001 - raised below
                            failure = exc
                            break
                if failure is not None:
                    raise failure
        return True

    def _acknowledged(self, expected: int, batch: Sequence[StoredEvent],
                      result: PushResult) -> tuple[list[int], int, str | None]:
        """The sequences a push acknowledgement assigns to `batch`, and the new cursor and tip.

        The cursor jumps to the head only if everything in between is ours;
        otherwise it stays and the next pull fetches the rest (ours are skipped).
        """
        self._behind_check(result.head)
        seqs = []
        for row in batch:
            seq = result.assigned.get(row.event_id)
            if seq is None or not 0 < seq <= result.head:
                raise RemoteRefused(200, "malformed_response",
                                    "the push acknowledgement misses a record")
            seqs.append(seq)
        if result.head > expected and sorted(seqs) == list(range(expected + 1,
                                                                 result.head + 1)):
            tip = next(r.event_id for r, s in zip(batch, seqs, strict=True) if s == result.head)
            return seqs, result.head, tip
        return seqs, expected, self.state.tip

    def _record(self, batch: Sequence[StoredEvent], seqs: Sequence[int], cursor: int,
                tip: str | None, head: int) -> None:
        """Mark an acknowledged batch synced and move the cursor (in the caller's transaction)."""
        self.store.mark_synced_many(list(zip((r.event_id for r in batch), seqs, strict=True)))
        self.state.set_position(cursor, max(self.state.last_head, head), tip)
        self._acked += 1
        self._pushed += sum(1 for r in batch if r.kind == KIND_EVENT)


class _PagePlan:
    """Which pulled inserts of a page can go into one batch insert.

    A new event needs a rebase only if a pending event of its aggregate holds its
    version (INV-010). One query reads, for every aggregate of the page, the local
    events at or above the lowest version the page brings for it: an aggregate
    with a pending one among them takes the one-by-one path (`_make_room`); for
    the others nothing can be rebased during this page, and a pulled event is
    corruption exactly when a synced event — local, or pulled earlier in this
    page — already holds its version, which this plan checks as the page goes.
    """

    def __init__(self, store: EventStore, checked: Sequence[_Checked]):
        lowest: dict[str, int] = {}
        for item in checked:
            row = item.row
            if item.action == "insert" and row is not None and row.kind == KIND_EVENT:
                known = lowest.get(row.aggregate_id)
                if known is None or row.version < known:
                    lowest[row.aggregate_id] = row.version
        self.rebasing: set[str] = set()
        self.holders: dict[tuple[str, int], str] = {}
        if lowest:
            for aggregate_id, version, event_id, synced in store.versions_from(lowest):
                if synced:
                    self.holders[(aggregate_id, version)] = event_id
                else:
                    self.rebasing.add(aggregate_id)

    def batched(self, item: _Checked) -> NewEvent | None:
        """The row of `item` if it is a plain insert (SyncCorrupt if it takes a synced version)."""
        row = item.row
        if item.action != "insert" or row is None:
            return None
        if row.kind != KIND_EVENT:
            return row
        if row.aggregate_id in self.rebasing:
            return None
        holder = self.holders.setdefault((row.aggregate_id, row.version), row.event_id)
        if holder != row.event_id:
            raise SyncCorrupt(f"takes version {row.version} of an aggregate whose event "
                              f"{holder} is already synced there", item.pulled.seq, row.event_id)
        return row


class _Background:
    """At most one call at a time on a worker thread: the next page or push in flight
    while this one is applied. Only network calls run there, never the store's."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, call: Callable[..., T], *args: object) -> Future[T]:
        """Start `call(*args)` on the worker thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mo-sync")
        return self._pool.submit(call, *args)

    def __enter__(self) -> _Background:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self._pool is not None:
            # After an interrupt, do not wait for a request in flight (its answer is
            # not needed: a push stored without our knowing is harmless, INV-008).
            interrupted = exc_type is not None and not issubclass(exc_type, Exception)
            self._pool.shutdown(wait=not interrupted, cancel_futures=True)


def _outgoing(batch: Sequence[StoredEvent], *, wire: bool = False) -> list[OutgoingRecord]:
    if wire:
        return [OutgoingRecord(row.event_id, row.record, encode_bytes(row.record))
                for row in batch]
    return [OutgoingRecord(row.event_id, row.record) for row in batch]
