"""Driver-level SQL of the push and pull hot paths, for SQLite and PostgreSQL.

The tables are those of `schema.py`; values go through the database's `Codec`, which
is built from SQLAlchemy's type processors, so these rows are indistinguishable from
rows written by Core statements. The statement texts are constant, so the drivers
reuse their prepared statements (sqlite3's statement cache, psycopg's automatic
server-side preparation).

On PostgreSQL the reads that open a push or a pull (session, store row, stored event
ids or the page) go out in one pipeline: one round trip instead of four. They still
run one after the other, each with its own snapshot, exactly as if sent one by one;
their results come back in binary (no hex-encoded bytea to parse).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row
from sqlalchemy.exc import DBAPIError

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

_POSTGRES_STORED = (
    "SELECT event_id, seq, record FROM records WHERE store_id = ? AND event_id = ANY(?)"
)
# One round trip appends the batch, moves the head and queues the notification; every
# part belongs to the push transaction (the notification is delivered at COMMIT).
_POSTGRES_APPEND = """
WITH appended AS (
    INSERT INTO records (store_id, seq, event_id, record, received_at)
    SELECT ?, ? + batch.n, batch.event_id, batch.record, ?
    FROM unnest(?::uuid[], ?::bytea[]) WITH ORDINALITY AS batch (event_id, record, n)
), moved AS (
    UPDATE stores SET head = ? WHERE store_id = ?
)
SELECT pg_notify(?, ?)
"""

# A row as the driver returns it (session, store and record rows).
_Rows = Sequence[Row[Any]] | Sequence[tuple[Any, ...]]


@dataclass(frozen=True)
class Opening:
    """What a push or a pull reads first, in this order, on its own connection."""

    session: tuple[object, object] | None
    store: tuple[UUID, int] | None
    records: list[tuple[int, UUID, bytes]]


class RecordStatements:
    """The statements of `RecordLog`, rendered for one backend."""

    def __init__(self, codec: Codec, postgres: bool) -> None:
        self._codec = codec
        self._postgres = postgres
        self._session = codec.sql(SESSION)
        self._store = codec.sql(_STORE)
        self._store_locked = codec.sql(_STORE + " FOR UPDATE") if postgres else self._store
        self._page = codec.sql(_PAGE)
        # psycopg sends the PostgreSQL batch statements' parameters in binary (`%b`):
        # arrays of 1,000 ids and records travel and parse 2-3x faster than as text.
        self._stored = _binary(_POSTGRES_STORED) if postgres else _SQLITE_STORED
        self._insert = _SQLITE_INSERT
        self._move_head = _SQLITE_MOVE_HEAD
        self._append = _binary(_POSTGRES_APPEND)

    def open_push(
        self,
        conn: Connection,
        token_sha256: bytes | None,
        store_id: UUID,
        event_ids: Sequence[UUID],
    ) -> Opening:
        """Session (if a token is given), the locked store row, and which ids it holds.

        The row lock comes before the id lookup, so the lookup sees every push that
        committed before ours.
        """
        codec = self._codec
        if self._postgres:
            ids: object = list(event_ids)
        else:
            ids = json.dumps([codec.uuid(event_id) for event_id in event_ids])
        store = codec.uuid(store_id)
        results = self._run(
            conn,
            token_sha256,
            (self._store_locked, (store,)),
            (self._stored, (store, ids)),
        )
        session, store_row, stored = results
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
        *,
        notify_channel: str,
    ) -> None:
        """Store records at head+1, head+2, … and move the head past them."""
        codec = self._codec
        store = codec.uuid(store_id)
        new_head = head + len(records)
        if self._postgres:
            conn.exec_driver_sql(
                self._append,
                (
                    store,
                    head,
                    received_at,
                    [event_id for event_id, _ in records],
                    [record for _, record in records],
                    new_head,
                    store,
                    notify_channel,
                    str(store_id),
                ),
            )
            return
        at = codec.time(received_at)
        conn.exec_driver_sql(
            self._insert,
            [
                (store, seq, codec.uuid(event_id), record, at)
                for seq, (event_id, record) in enumerate(records, start=head + 1)
            ],
        )
        conn.exec_driver_sql(self._move_head, (new_head, store))

    def _run(
        self,
        conn: Connection,
        token_sha256: bytes | None,
        *statements: tuple[str, tuple[object, ...]],
    ) -> list[_Rows]:
        """The session query (or nothing) and then `statements`, in order."""
        queries = list(statements)
        if token_sha256 is not None:
            queries.insert(0, (self._session, (token_sha256,)))
        if self._postgres:
            results = _pipelined(conn, queries)
        else:
            results = [conn.exec_driver_sql(sql, params).all() for sql, params in queries]
        return results if token_sha256 is not None else [[], *results]

    def _session_of(self, rows: _Rows) -> tuple[object, object] | None:
        return (rows[0][0], rows[0][1]) if rows else None

    def _store_of(self, rows: _Rows) -> tuple[UUID, int] | None:
        if not rows:
            return None
        head: int = rows[0][1]
        return self._codec.to_uuid(rows[0][0]), head


def _binary(statement: str) -> str:
    return statement.replace("?", "%b")


def _pipelined(conn: Connection, queries: list[tuple[str, tuple[object, ...]]]) -> list[_Rows]:
    """Send every query before reading any result (psycopg pipeline mode)."""
    import psycopg  # only PostgreSQL servers load the driver

    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with raw.pipeline():
            cursors = [raw.execute(sql, params, binary=True) for sql, params in queries]
            return [cursor.fetchall() for cursor in cursors]
    except psycopg.Error as exc:
        if raw.closed:
            conn.invalidate()  # what SQLAlchemy does with a connection the server dropped
        # The same exception types SQLAlchemy raises, so errors map to problems as usual.
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=raw.closed
        ) from exc
