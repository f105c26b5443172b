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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import Connection, insert, select, text, update

from mo_local.server.database import Database
from mo_local.server.errors import EventIdConflict, ServerAhead, ServerBehind, StoreNotFound
from mo_local.server.schema import records, stores
from mo_local.server.storage import Clock, utc_now

# Bound parameters per IN (...) query, well under SQLite's and PostgreSQL's limits.
_LOOKUP_CHUNK = 500


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

    def __init__(self, database: Database, *, notify_channel: str, clock: Clock = utc_now) -> None:
        self._db = database
        self._channel = notify_channel
        self._clock = clock

    def push(
        self,
        account_id: UUID,
        store_id: UUID,
        expected_head: int,
        incoming: Sequence[IncomingRecord],
    ) -> PushOutcome:
        """Append records after `expected_head`; see the module docstring for the rules."""
        with self._db.write() as conn:
            row = conn.execute(
                select(stores.c.owner_account_id, stores.c.head)
                .where(stores.c.store_id == store_id)
                .with_for_update()
            ).first()
            if row is None or row.owner_account_id != account_id:
                raise StoreNotFound()
            head: int = row.head
            stored = _stored_by_event_id(conn, store_id, [item.event_id for item in incoming])
            fresh: list[IncomingRecord] = []
            for item in incoming:
                existing = stored.get(item.event_id)
                if existing is None:
                    fresh.append(item)
                elif existing.record != item.record:
                    raise EventIdConflict(str(item.event_id))
            seq_of = {event_id: found.seq for event_id, found in stored.items()}
            if fresh:
                if expected_head < head:
                    raise ServerAhead(head)
                if expected_head > head:
                    raise ServerBehind(head)
                received_at = self._clock()
                for offset, item in enumerate(fresh, start=1):
                    seq_of[item.event_id] = head + offset
                rows = [
                    {
                        "store_id": store_id,
                        "seq": head + offset,
                        "event_id": item.event_id,
                        "record": item.record,
                        "received_at": received_at,
                    }
                    for offset, item in enumerate(fresh, start=1)
                ]
                conn.execute(insert(records), rows)
                head += len(fresh)
                conn.execute(update(stores).where(stores.c.store_id == store_id).values(head=head))
                if self._db.is_postgres:
                    # Delivered to every LISTENing server process when this transaction commits.
                    conn.execute(
                        text("SELECT pg_notify(:channel, :payload)"),
                        {"channel": self._channel, "payload": str(store_id)},
                    )
        return PushOutcome(
            head=head,
            assigned=[(item.event_id, seq_of[item.event_id]) for item in incoming],
            new_records=len(fresh),
            new_bytes=sum(len(item.record) for item in fresh),
        )

    def pull(self, account_id: UUID, store_id: UUID, since: int, limit: int) -> PullPage:
        """Up to `limit` records with seq > `since`, and the head, from one snapshot."""
        with self._db.snapshot() as conn:
            row = conn.execute(
                select(stores.c.owner_account_id, stores.c.head).where(
                    stores.c.store_id == store_id
                )
            ).first()
            if row is None or row.owner_account_id != account_id:
                raise StoreNotFound()
            found = conn.execute(
                select(records.c.seq, records.c.event_id, records.c.record)
                .where(records.c.store_id == store_id, records.c.seq > since)
                .order_by(records.c.seq)
                .limit(limit + 1)
            ).all()
        page = [StoredRecord(item.seq, item.event_id, bytes(item.record)) for item in found[:limit]]
        return PullPage(records=page, head=row.head, has_more=len(found) > limit)

    def head(self, account_id: UUID, store_id: UUID) -> int:
        """The store's head (`StoreNotFound` for other accounts' stores)."""
        with self._db.snapshot() as conn:
            row = conn.execute(
                select(stores.c.owner_account_id, stores.c.head).where(
                    stores.c.store_id == store_id
                )
            ).first()
        if row is None or row.owner_account_id != account_id:
            raise StoreNotFound()
        head: int = row.head
        return head


def _stored_by_event_id(
    conn: Connection, store_id: UUID, event_ids: Sequence[UUID]
) -> dict[UUID, StoredRecord]:
    found: dict[UUID, StoredRecord] = {}
    for start in range(0, len(event_ids), _LOOKUP_CHUNK):
        chunk = event_ids[start : start + _LOOKUP_CHUNK]
        for row in conn.execute(
            select(records.c.seq, records.c.event_id, records.c.record).where(
                records.c.store_id == store_id, records.c.event_id.in_(chunk)
            )
        ):
            found[row.event_id] = StoredRecord(row.seq, row.event_id, bytes(row.record))
    return found
