"""Effective order and its cursor (DESIGN.md §6, docs/architecture.md "Effective order cursor").

Effective order = synced events by global sequence, then pending events by commit
sequence. A cursor (G, C) names the applied set A = {global_seq <= G} ∪
{commit_seq <= C}. Every query here walks a b-tree from a bound and stops early:
the `sync_map` table (its rowid is the global seq), the `pending` table or the
events rowid. SQLite keeps the left table of a CROSS JOIN as the outer loop, which
pins those plans.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from mo_local.store.errors import MalformedRow
from mo_local.store.log import check_batch_size, paginate
from mo_local.store.records import Cursor, StoredEvent, select_events

_SYNCED_AFTER = (
    select_events() + " FROM sync_map m CROSS JOIN events e ON e.event_id = m.event_id"
    " WHERE m.global_seq > :after AND e.commit_seq > :committed"
    " ORDER BY m.global_seq LIMIT :limit"
)
_PENDING_AFTER = (
    select_events("NULL") + " FROM pending p CROSS JOIN events e ON e.commit_seq = p.commit_seq"
    " WHERE p.commit_seq > :after ORDER BY p.commit_seq LIMIT :limit"
)


def _global_seq(event: StoredEvent) -> int:
    if event.global_seq is None:  # the synced phase joins sync_map, so this is damage
        raise MalformedRow("synced row without a global sequence")
    return event.global_seq


def read_effective_order(
    conn: sqlite3.Connection, after: Cursor, batch_size: int
) -> Iterator[StoredEvent]:
    """Events not in the applied set of `after`, in effective order, page by page."""
    check_batch_size(batch_size)
    yield from paginate(
        conn, _SYNCED_AFTER, {"committed": after.committed}, after.synced, _global_seq, batch_size
    )
    yield from paginate(
        conn, _PENDING_AFTER, {}, after.committed, lambda e: e.commit_seq, batch_size
    )


def advance(cursor: Cursor, event: StoredEvent) -> Cursor:
    """The cursor after applying `event` (read in effective order) on top of `cursor`."""
    if event.global_seq is not None:
        return Cursor(synced=max(cursor.synced, event.global_seq), committed=cursor.committed)
    return Cursor(synced=cursor.synced, committed=max(cursor.committed, event.commit_seq))


def effective_head(conn: sqlite3.Connection) -> Cursor:
    """The cursor whose applied set is every event in the store."""
    synced = conn.execute("SELECT COALESCE(MAX(global_seq), 0) FROM sync_map").fetchone()
    committed = conn.execute("SELECT COALESCE(MAX(commit_seq), 0) FROM pending").fetchone()
    return Cursor(
        synced=int(synced[0]) if synced is not None else 0,
        committed=int(committed[0]) if committed is not None else 0,
    )


def covers_events(conn: sqlite3.Connection, cursor: Cursor) -> bool:
    """True iff every event (key records aside) is in the applied set of `cursor`."""
    outside_synced = conn.execute(
        "SELECT 1 FROM sync_map m CROSS JOIN events e ON e.event_id = m.event_id"
        " WHERE m.global_seq > ? AND e.commit_seq > ? AND e.kind = 'event' LIMIT 1",
        (cursor.synced, cursor.committed),
    ).fetchone()
    if outside_synced is not None:
        return False
    outside_pending = conn.execute(
        "SELECT 1 FROM pending p CROSS JOIN events e ON e.commit_seq = p.commit_seq"
        " WHERE p.commit_seq > ? AND e.kind = 'event' LIMIT 1",
        (cursor.committed,),
    ).fetchone()
    return outside_pending is None


def cursor_is_prefix(conn: sqlite3.Connection, cursor: Cursor) -> bool:
    """True iff the applied set of `cursor` is still a prefix of the effective order (INV-011)."""
    # f: the earliest synced event outside A. Pending events outside A sort after
    # everything synced, so only synced outsiders can jump ahead of applied events.
    row = conn.execute(
        "SELECT m.global_seq FROM sync_map m CROSS JOIN events e ON e.event_id = m.event_id"
        " WHERE m.global_seq > ? AND e.commit_seq > ? ORDER BY m.global_seq LIMIT 1",
        (cursor.synced, cursor.committed),
    ).fetchone()
    if row is None:
        return True
    first_outside = int(row[0])
    # An applied pending event now sorts after that outsider.
    pending_applied = conn.execute(
        "SELECT 1 FROM pending WHERE commit_seq <= ? LIMIT 1", (cursor.committed,)
    ).fetchone()
    if pending_applied is not None:
        return False
    # An event applied while pending, since pushed, got a sequence after the outsider.
    pushed_after = conn.execute(
        "SELECT 1 FROM sync_map m CROSS JOIN events e ON e.event_id = m.event_id"
        " WHERE m.global_seq > ? AND e.commit_seq <= ? LIMIT 1",
        (first_outside, cursor.committed),
    ).fetchone()
    return pushed_after is None
