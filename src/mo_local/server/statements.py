"""Driver-level SQL of the push and pull hot paths, for SQLite and PostgreSQL.

The tables are those of `schema.py`; values go through the database's `Codec`, which
is built from SQLAlchemy's type processors, so these rows are indistinguishable from
rows written by Core statements. The statement texts are constant, so the drivers
reuse their prepared statements (sqlite3's statement cache, psycopg's automatic
server-side preparation).

SQLite runs a push or a pull as a few statements in one transaction (`open_push`,
`append`, `open_pull`, on a SQLAlchemy connection). PostgreSQL runs each as ONE
statement on the event loop (`AsyncPostgres`): a push calls the `mo_push` procedure
of migrations 0002 and 0003, a pull is one query and so reads one snapshot. Their parameters
and results travel in binary (no hex-encoded bytea to parse).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row

from mo_local.server.async_postgres import AsyncPostgres
from mo_local.server.database import Codec

SESSION = "SELECT account_id, expires_at FROM sessions WHERE token_sha256 = ?"

_STORE = "SELECT owner_account_id, head FROM stores WHERE store_id = ?"
_PAGE = (
    "SELECT seq, event_id, record FROM records WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)

# SQLite: the ids travel as one JSON array, so one statement serves any batch size.
_SQLITE_STORED = (
    "SELECT event_id, seq, record FROM records "
    "WHERE store_id = ? AND event_id IN (SELECT value FROM json_each(?))"
)
_SQLITE_INSERT = (
    "INSERT INTO records (store_id, seq, event_id, record, received_at) VALUES (?, ?, ?, ?, ?)"
)
_SQLITE_MOVE_HEAD = "UPDATE stores SET head = ? WHERE store_id = ?"

# PostgreSQL: the whole push, one round trip (see migration 0002 for the rules).
_POSTGRES_PUSH = (
    "CALL mo_push(%b::bytea, %b::uuid, %b::uuid, %b::bigint, %b::uuid[], %b::bytea[], "
    "%b::timestamptz, %b::timestamptz, %b::text, NULL, NULL, NULL, NULL, NULL)"
)
# PostgreSQL: the whole pull, one statement, so one snapshot for the head and the page.
# The account is the verified one, else the live session's; the page is read only for
# the store's owner (a one-time filter: nothing is scanned for anyone else). Always
# at least one row; no page row has a NULL seq.
_POSTGRES_PULL = """
WITH viewer AS MATERIALIZED (
    SELECT coalesce(
        %b::uuid,
        (SELECT s.account_id FROM sessions AS s
         WHERE s.token_sha256 = %b::bytea AND s.expires_at > %b::timestamptz)
    ) AS account_id
)
SELECT viewer.account_id, st.owner_account_id, st.head, page.seq, page.event_id, page.record
FROM viewer
LEFT JOIN stores AS st ON st.store_id = %b::uuid
LEFT JOIN LATERAL (
    SELECT r.seq, r.event_id, r.record FROM records AS r
    WHERE r.store_id = %b::uuid AND r.seq > %b::bigint
        AND st.owner_account_id = viewer.account_id
    ORDER BY r.seq
    LIMIT %b::bigint
) AS page ON true
ORDER BY page.seq
"""

# A row as the driver returns it (session, store and record rows).
_Rows = Sequence[Row[Any]] | Sequence[tuple[Any, ...]]


@dataclass(frozen=True)
class Opening:
    """What a push or a pull reads first on SQLite, in this order, in its transaction."""

    session: tuple[object, object] | None
    store: tuple[UUID, int] | None
    records: list[tuple[int, UUID, bytes]]


@dataclass(frozen=True)
class PushCall:
    """What `mo_push` answered (see migration 0002)."""

    outcome: str
    head: int | None
    seqs: list[int]
    appended: int
    conflict_event_id: UUID | None


@dataclass(frozen=True)
class PageRead:
    """What the PostgreSQL pull read: the account (None: no live session), the store
    (None: no such store), and the page (empty unless the account owns the store)."""

    account_id: UUID | None
    store: tuple[UUID, int] | None
    records: list[tuple[int, UUID, bytes]]


class RecordStatements:
    """The statements of `RecordLog`, rendered for one backend."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._session = codec.sql(SESSION)
        self._store = codec.sql(_STORE)
        self._page = codec.sql(_PAGE)

    # -- SQLite: statements on a connection in a transaction -------------------------

    def open_push(
        self,
        conn: Connection,
        token_sha256: bytes | None,
        store_id: UUID,
        event_ids: Sequence[UUID],
    ) -> Opening:
        """Session (if a token is given), the store row, and which ids it holds — read in
        a transaction that already holds the write lock (`BEGIN IMMEDIATE`), so the
        lookup sees every push that committed before ours."""
        codec = self._codec
        ids = json.dumps([codec.uuid(event_id) for event_id in event_ids])
        store = codec.uuid(store_id)
        session, store_row, stored = self._run(
            conn,
            token_sha256,
            (self._store, (store,)),
            (_SQLITE_STORED, (store, ids)),
        )
        return Opening(
            session=self._session_of(session),
            store=self._store_of(store_row),
            records=[
                (seq, codec.to_uuid(event_id), bytes(record)) for event_id, seq, record in stored
            ],
        )

    def open_pull(
        self,
        conn: Connection,
        token_sha256: bytes | None,
        store_id: UUID,
        since: int,
        limit: int,
    ) -> Opening:
        """Session (if a token is given), the store row, and up to `limit` records after
        `since`, in order."""
        codec = self._codec
        store = codec.uuid(store_id)
        session, store_row, page = self._run(
            conn,
            token_sha256,
            (self._store, (store,)),
            (self._page, (store, since, limit)),
        )
        to_uuid = codec.to_uuid
        return Opening(
            session=self._session_of(session),
            store=self._store_of(store_row),
            records=[(seq, to_uuid(event_id), bytes(record)) for seq, event_id, record in page],
        )

    def append(
        self,
        conn: Connection,
        store_id: UUID,
        head: int,
        records: Sequence[tuple[UUID, bytes]],
        received_at: datetime,
    ) -> None:
        """Store records at head+1, head+2, … and move the head past them."""
        codec = self._codec
        store = codec.uuid(store_id)
        at = codec.time(received_at)
        conn.exec_driver_sql(
            _SQLITE_INSERT,
            [
                (store, seq, codec.uuid(event_id), record, at)
                for seq, (event_id, record) in enumerate(records, start=head + 1)
            ],
        )
        conn.exec_driver_sql(_SQLITE_MOVE_HEAD, (head + len(records), store))

    # -- PostgreSQL: one statement each, awaited on the event loop --------------------

    async def push_call(
        self,
        pg: AsyncPostgres,
        *,
        account_id: UUID | None,
        token_sha256: bytes | None,
        store_id: UUID,
        expected_head: int,
        records: Sequence[tuple[UUID, bytes]],
        now: datetime,
        received_at: datetime,
        notify_channel: str,
    ) -> PushCall:
        """The whole push: one call of `mo_push`, in its own transaction."""
        rows = await pg.fetch(
            _POSTGRES_PUSH,
            (
                token_sha256,
                account_id,
                store_id,
                expected_head,
                [event_id for event_id, _ in records],
                [record for _, record in records],
                now,
                received_at,
                notify_channel,
            ),
        )
        outcome, head, seqs, appended, conflict = rows[0]
        return PushCall(outcome, head, seqs or [], appended, conflict)

    async def pull_page(
        self,
        pg: AsyncPostgres,
        *,
        account_id: UUID | None,
        token_sha256: bytes | None,
        store_id: UUID,
        since: int,
        limit: int,
        now: datetime,
    ) -> PageRead:
        """Account, store and up to `limit` records after `since`: one statement."""
        rows = await pg.fetch(
            _POSTGRES_PULL, (account_id, token_sha256, now, store_id, store_id, since, limit)
        )
        account, owner, head = rows[0][:3]
        return PageRead(
            account_id=account,
            store=None if owner is None else (owner, head),
            records=[
                (seq, event_id, record)
                for _, _, _, seq, event_id, record in rows
                if seq is not None
            ],
        )

    # -- helpers ------------------------------------------------------------------------

    def _run(
        self,
        conn: Connection,
        token_sha256: bytes | None,
        *statements: tuple[str, tuple[object, ...]],
    ) -> list[_Rows]:
        """The session query (or nothing) and then `statements`, in order."""
        results: list[_Rows] = []
        if token_sha256 is not None:
            results.append(conn.exec_driver_sql(self._session, (token_sha256,)).all())
        else:
            results.append([])
        results.extend(conn.exec_driver_sql(sql, params).all() for sql, params in statements)
        return results

    def _session_of(self, rows: _Rows) -> tuple[object, object] | None:
        return (rows[0][0], rows[0][1]) if rows else None

    def _store_of(self, rows: _Rows) -> tuple[UUID, int] | None:
        if not rows:
            return None
        head: int = rows[0][1]
        return self._codec.to_uuid(rows[0][0]), head
