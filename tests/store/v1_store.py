"""A store at schema v1, written the way the v1 code wrote it (imported as a sibling module).

Schema v1 kept key records twice (their events row and a `keys` row) and gave
commit seqs by AUTOINCREMENT. The current code only speaks v2, so the tests that
need a v1 store write its rows with the v1 statements given here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from mo_local.store import NewEvent
from mo_local.store.schema import MIGRATIONS, apply_migrations

V1 = MIGRATIONS[:1]

_INSERT_EVENT = (
    "INSERT INTO events (event_id, kind, aggregate_type, aggregate_id, version, key_id, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the store's PRAGMAs (WAL, synchronous=FULL, foreign keys)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def create(path: Path) -> sqlite3.Connection:
    """A new store at schema v1 (its migration only), open on a plain connection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    assert apply_migrations(conn, V1) == 1
    return conn


def _insert(conn: sqlite3.Connection, e: NewEvent) -> int:
    row = (e.event_id, e.kind, e.aggregate_type, e.aggregate_id, e.version, e.key_id, e.record)
    seq = conn.execute(_INSERT_EVENT, row).lastrowid
    assert seq is not None
    if e.kind == "key":
        conn.execute(
            "INSERT INTO keys (key_id, aggregate_id, event_id) VALUES (?, ?, ?)",
            (e.key_id, e.aggregate_id, e.event_id),
        )
    return seq


def append(conn: sqlite3.Connection, rows: Sequence[NewEvent]) -> list[int]:
    """v1's append: the rows in one transaction; their commit seqs."""
    conn.execute("BEGIN IMMEDIATE")
    seqs = [_insert(conn, e) for e in rows]
    conn.execute("COMMIT")
    return seqs


def insert_remote(conn: sqlite3.Connection, e: NewEvent, global_seq: int) -> int:
    """v1's insert of a pulled record with its sync mapping."""
    conn.execute("BEGIN IMMEDIATE")
    seq = _insert(conn, e)
    conn.execute(
        "INSERT INTO sync_map (event_id, global_seq) VALUES (?, ?)", (e.event_id, global_seq)
    )
    conn.execute("COMMIT")
    return seq


def mark_synced(conn: sqlite3.Connection, event_id: str, global_seq: int) -> None:
    """v1's push acknowledgement."""
    conn.execute(
        "INSERT INTO sync_map (event_id, global_seq) VALUES (?, ?)", (event_id, global_seq)
    )


def rewrite(conn: sqlite3.Connection, event_id: str, version: int, record: bytes) -> None:
    """v1's rebase of a pending event."""
    conn.execute(
        "UPDATE events SET version = ?, record = ? WHERE event_id = ?", (version, record, event_id)
    )
