"""The per-store record log: push assigns gapless sequences, pull reads pages in one snapshot.

Push follows DESIGN.md §7 to the letter, inside ONE transaction that first locks the
store row (PostgreSQL `SELECT … FOR UPDATE`; SQLite `BEGIN IMMEDIATE`):
1. records whose event id is already stored keep their sequence (idempotency comes
   BEFORE the head check, so a retried push after a lost acknowledgement succeeds —
   INV-008); the same id with other bytes is `event_id_conflict`;
2. if anything is new, `expected_head` must equal the head (`server_ahead` /
   `server_behind` otherwise);
3. new records get head+1, head+2, … and the head moves — gapless (INV-009).
Record bytes are stored and returned untouched (INV-004).

Push and pull are the hot paths, so they run driver-level SQL (`statements.py`). On
SQLite they are a few statements in one transaction (`_push`, `_pull`, the rules in
Python). On PostgreSQL each is ONE statement awaited on the event loop: a push calls
`mo_push` (migration 0002: the same rules, in the same order, in PL/pgSQL; 0003 adds
a plain path for a push of one record), a pull is one query. The session is checked
inside the operation either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from uuid import UUID

from sqlalchemy import Connection

from mo_local.server.database import Database
from mo_local.server.errors import (
    EventIdConflict,
    ServerAhead,
    ServerBehind,
    StoreNotFound,
    Unauthorized,
)
from mo_local.server.statements import Opening, PushCall, RecordStatements
from mo_local.server.storage import Clock, Credentials, Storage, utc_now


@dataclass(frozen=True)
class IncomingRecord:
    """A record as pushed: client-chosen event id and opaque bytes."""

    event_id: UUID
    record: bytes = field(repr=False)


@dataclass(frozen=True)
class StoredRecord:
    """A record at its place in the store's order."""

    seq: int
    event_id: UUID
    record: bytes = field(repr=False)


@dataclass(frozen=True)
class PushOutcome:
    """The head after a push and the sequence of every pushed record, in request order."""

    head: int
    assigned: list[tuple[UUID, int]]
    new_records: int
    new_bytes: int


@dataclass(frozen=True)
class PullPage:
    """Records after a cursor with the head read in the same snapshot."""

    records: list[StoredRecord]
    head: int
    has_more: bool


class RecordLog:
    """Push and pull on the records table."""

    def __init__(
        self,
        database: Database,
        storage: Storage,
        *,
        notify_channel: str,
        clock: Clock = utc_now,
    ) -> None:
        self._db = database
        self._storage = storage
        self._sql = RecordStatements(database.codec)
        self._channel = notify_channel
        self._clock = clock

    async def push(
        self,
        credentials: Credentials,
        store_id: UUID,
        expected_head: int,
        incoming: Sequence[IncomingRecord],
    ) -> PushOutcome:
        """Append records after `expected_head`; see the module docstring for the rules."""
        if self._db.async_postgres is not None:
            return await self._push_postgres(credentials, store_id, expected_head, incoming)
        return await self._db.run_write(
            partial(self._push, credentials, store_id, expected_head, incoming)
        )

    async def pull(
        self, credentials: Credentials, store_id: UUID, since: int, limit: int
    ) -> PullPage:
        """Up to `limit` records with seq > `since`, and the head, from one snapshot."""
        if self._db.async_postgres is not None:
            return await self._pull_postgres(credentials, store_id, since, limit)
        return await self._db.run_snapshot(partial(self._pull, credentials, store_id, since, limit))

    def _push(
        self,
        credentials: Credentials,
        store_id: UUID,
        expected_head: int,
        incoming: Sequence[IncomingRecord],
        conn: Connection,
    ) -> PushOutcome:
        sql = self._sql
        opening = sql.open_push(
            conn,
            credentials.token_sha256,
            store_id,
            [item.event_id for item in incoming],
        )
        head = self._owned_head(credentials, opening)
        stored = {event_id: (seq, record) for seq, event_id, record in opening.records}
        fresh: list[IncomingRecord] = []
        for item in incoming:
            existing = stored.get(item.event_id)
            if existing is None:
                fresh.append(item)
            elif existing[1] != item.record:
                raise EventIdConflict(str(item.event_id))
        seq_of = {event_id: seq for event_id, (seq, _) in stored.items()}
        if fresh:
            if expected_head < head:
                raise ServerAhead(head)
            if expected_head > head:
                raise ServerBehind(head)
            for offset, item in enumerate(fresh, start=1):
                seq_of[item.event_id] = head + offset
            sql.append(
                conn,
                store_id,
                head,
                [(item.event_id, item.record) for item in fresh],
                self._clock(),
            )
            head += len(fresh)
        return PushOutcome(
            head=head,
            assigned=[(item.event_id, seq_of[item.event_id]) for item in incoming],
            new_records=len(fresh),
            new_bytes=sum(len(item.record) for item in fresh),
        )

    async def _push_postgres(
        self,
        credentials: Credentials,
        store_id: UUID,
        expected_head: int,
        incoming: Sequence[IncomingRecord],
    ) -> PushOutcome:
        pg = self._db.async_postgres
        assert pg is not None
        call = await self._sql.push_call(
            pg,
            account_id=credentials.account_id,
            token_sha256=credentials.token_sha256,
            store_id=store_id,
            expected_head=expected_head,
            records=[(item.event_id, item.record) for item in incoming],
            now=self._storage.now(),
            received_at=self._clock(),
            # Delivered to every LISTENing server process once the push has committed.
            notify_channel=self._channel,
        )
        return _push_outcome(call, incoming)

    async def _pull_postgres(
        self, credentials: Credentials, store_id: UUID, since: int, limit: int
    ) -> PullPage:
        pg = self._db.async_postgres
        assert pg is not None
        read = await self._sql.pull_page(
            pg,
            account_id=credentials.account_id,
            token_sha256=credentials.token_sha256,
            store_id=store_id,
            since=since,
            limit=limit + 1,
            now=self._storage.now(),
        )
        if read.account_id is None:
            raise Unauthorized()
        if read.store is None or read.store[0] != read.account_id:
            raise StoreNotFound()
        found = read.records
        page = [StoredRecord(seq, event_id, record) for seq, event_id, record in found[:limit]]
        return PullPage(records=page, head=read.store[1], has_more=len(found) > limit)

    def _pull(
        self,
        credentials: Credentials,
        store_id: UUID,
        since: int,
        limit: int,
        conn: Connection,
    ) -> PullPage:
        opening = self._sql.open_pull(conn, credentials.token_sha256, store_id, since, limit + 1)
        head = self._owned_head(credentials, opening)
        found = opening.records
        page = [StoredRecord(seq, event_id, record) for seq, event_id, record in found[:limit]]
        return PullPage(records=page, head=head, has_more=len(found) > limit)

    def _owned_head(self, credentials: Credentials, opening: Opening) -> int:
        # The session is checked in the operation's own transaction (see `Credentials`).
        if credentials.account_id is not None:
            account_id = credentials.account_id
        else:
            account_id = self._storage.session_row_account(opening.session)
        if opening.store is None or opening.store[0] != account_id:
            raise StoreNotFound()
        return opening.store[1]


def _push_outcome(call: PushCall, incoming: Sequence[IncomingRecord]) -> PushOutcome:
    """The outcome of a `mo_push` call, or the error it stands for."""
    if call.outcome == "stored" and call.head is not None:
        first_new = call.head - call.appended
        return PushOutcome(
            head=call.head,
            assigned=[(item.event_id, seq) for item, seq in zip(incoming, call.seqs, strict=True)],
            new_records=call.appended,
            new_bytes=sum(
                len(item.record)
                for item, seq in zip(incoming, call.seqs, strict=True)
                if seq > first_new
            ),
        )
    if call.outcome == "unauthorized":
        raise Unauthorized()
    if call.outcome == "store_not_found":
        raise StoreNotFound()
    if call.outcome == "event_id_conflict":
        raise EventIdConflict(str(call.conflict_event_id))
    if call.outcome == "server_ahead" and call.head is not None:
        raise ServerAhead(call.head)
    if call.outcome == "server_behind" and call.head is not None:
        raise ServerBehind(call.head)
    raise RuntimeError("mo_push answered an unknown outcome")
