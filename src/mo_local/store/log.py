"""The event log itself: appends, remote inserts, sync mappings, rebase rewrites, plain reads.

Functions here take a connection and assume the caller (EventStore) provides
the transaction and the error translation.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence

from mo_local.store.errors import (
    ConcurrencyError,
    DuplicateEvent,
    ImmutableEvent,
    InvalidArgument,
    MalformedRow,
    StoreError,
    UnknownEvent,
    VersionTaken,
)
from mo_local.store.records import (
    KIND_EVENT,
    KIND_KEY,
    NewEvent,
    StoredEvent,
    select_events,
    stored_event,
)

_FROM_EVENTS = " FROM events e LEFT JOIN sync_map m ON m.event_id = e.event_id"
# Key records are the rows of kind 'key'. Every query of them says `kind = 'key'`
# literally: that is what lets SQLite use the partial indexes events_key_ids
# (key_id) and events_key_aggregates (aggregate_id).
_KEY_RECORD_SEQS = "SELECT commit_seq FROM events WHERE kind = 'key'"
_KEY_RECORDS_BY_SEQ = (
    select_events() + " FROM json_each(?) j CROSS JOIN events e ON e.commit_seq = j.value"
    " LEFT JOIN sync_map m ON m.event_id = e.event_id WHERE e.kind = 'key'"
    " ORDER BY e.commit_seq"
)
_AGGREGATE_KEY_RECORDS = (
    select_events() + _FROM_EVENTS
    + " WHERE e.aggregate_id = :aggregate_id AND e.kind = 'key' AND e.commit_seq > :after"
    " ORDER BY e.commit_seq LIMIT :limit"
)
_KEY_RECORD_BY_KEY_ID = select_events() + _FROM_EVENTS + " WHERE e.kind = 'key' AND e.key_id = ?"
_KEY_ID_TAKEN = "SELECT 1 FROM events WHERE kind = 'key' AND key_id = ?"
_KEY_IDS_TAKEN = (
    "SELECT e.key_id FROM json_each(?) j CROSS JOIN events e"
    " ON e.key_id = j.value AND e.kind = 'key'"
)
_INSERT_EVENT = (
    "INSERT INTO events (event_id, kind, aggregate_type, aggregate_id, version, key_id, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def check_batch_size(batch_size: int) -> None:
    """Refuse a page size that could not make progress."""
    if batch_size < 1:
        raise InvalidArgument("batch_size must be at least 1")


def paginate(
    conn: sqlite3.Connection,
    sql: str,
    params: Mapping[str, object],
    after: int,
    key: Callable[[StoredEvent], int],
    batch_size: int,
) -> Iterator[StoredEvent]:
    """Keyset pagination: `sql` selects rows with key > :after ordered by key, LIMIT :limit."""
    check_batch_size(batch_size)
    while True:
        # Each page is fetched whole before yielding, so a caller may write
        # between items without disturbing a half-read statement.
        rows = conn.execute(sql, {**params, "after": after, "limit": batch_size}).fetchall()
        events = [stored_event(row) for row in rows]
        yield from events
        if len(events) < batch_size:
            return
        after = key(events[-1])


def current_version(conn: sqlite3.Connection, aggregate_id: str) -> int:
    """Highest event version of the aggregate, 0 if it has none."""
    row = conn.execute(
        "SELECT version FROM events WHERE aggregate_id = ? AND kind = 'event'"
        " ORDER BY version DESC LIMIT 1",
        (aggregate_id,),
    ).fetchone()
    if row is None:
        return 0
    if not isinstance(row[0], int):
        raise MalformedRow("version is not an integer")
    return row[0]


def _event_exists(conn: sqlite3.Connection, event_id: str) -> bool:
    row = conn.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return row is not None


def _key_id_taken(conn: sqlite3.Connection, key_id: str) -> bool:
    return conn.execute(_KEY_ID_TAKEN, (key_id,)).fetchone() is not None


def _version_holder(conn: sqlite3.Connection, aggregate_id: str, version: int) -> str | None:
    row = conn.execute(
        "SELECT event_id FROM events WHERE aggregate_id = ? AND version = ? AND kind = 'event'",
        (aggregate_id, version),
    ).fetchone()
    return str(row[0]) if row is not None else None


def _insert(conn: sqlite3.Connection, event: NewEvent) -> int:
    """Insert one row; the caller has checked that its event id is new."""
    if event.kind == KIND_KEY and _key_id_taken(conn, event.key_id):
        raise StoreError(f"key id {event.key_id} is already registered")
    cursor = conn.execute(
        _INSERT_EVENT,
        (
            event.event_id,
            event.kind,
            event.aggregate_type,
            event.aggregate_id,
            event.version,
            event.key_id,
            event.record,
        ),
    )
    commit_seq = cursor.lastrowid
    if commit_seq is None:
        raise StoreError("the database did not report a commit sequence")
    return commit_seq


def _check_batch(aggregate_id: str, expected_version: int, events: Sequence[NewEvent]) -> None:
    if expected_version < 0:
        raise InvalidArgument("expected_version must be >= 0")
    next_version = expected_version + 1
    for event in events:
        if event.aggregate_id != aggregate_id:
            raise InvalidArgument("every row of a batch belongs to the batch's aggregate")
        if event.kind == KIND_EVENT:
            if event.version != next_version:
                raise InvalidArgument(
                    f"event versions must run contiguously from {expected_version + 1}"
                )
            next_version += 1




def append(
    conn: sqlite3.Connection, aggregate_id: str, expected_version: int, events: Sequence[NewEvent]
) -> list[int]:
    """Append one aggregate's rows after checking its current version; returns commit seqs.

    An event id already in the log is found by its UNIQUE constraint as the row
    goes in (no query of its own: appends carry fresh random ids), and named as
    DuplicateEvent like before, for the first such row of the batch; a key id
    already registered likewise, by the unique index events_key_ids. Rows inserted
    before the failing one are left to the caller's transaction to roll back (the
    `EventStore.append` savepoint, or the unit it joined).
    """
    _check_batch(aggregate_id, expected_version, events)
    actual = current_version(conn, aggregate_id)
    if actual != expected_version:
        raise ConcurrencyError(aggregate_id, expected_version, actual)
    if len(events) > 1:
        seen: set[str] = set()
        for event in events:
            if event.event_id in seen:
                raise DuplicateEvent(event.event_id)
            seen.add(event.event_id)
    seqs: list[int] = []
    execute = conn.execute
    for event in events:
        try:
            commit_seq = execute(
                _INSERT_EVENT,
                (
                    event.event_id,
                    event.kind,
                    event.aggregate_type,
                    event.aggregate_id,
                    event.version,
                    event.key_id,
                    event.record,
                ),
            ).lastrowid
        except sqlite3.IntegrityError:
            if _event_exists(conn, event.event_id):
                raise DuplicateEvent(event.event_id) from None
            if event.kind == KIND_KEY and _key_id_taken(conn, event.key_id):
                raise StoreError(f"key id {event.key_id} is already registered") from None
            raise
        if commit_seq is None:
            raise StoreError("the database did not report a commit sequence")
        seqs.append(commit_seq)
    return seqs


def _check_global_seq_free(conn: sqlite3.Connection, global_seq: int) -> None:
    if global_seq < 1:
        raise InvalidArgument("global sequences start at 1")
    row = conn.execute("SELECT 1 FROM sync_map WHERE global_seq = ?", (global_seq,)).fetchone()
    if row is not None:
        raise StoreError(f"global sequence {global_seq} is already mapped to another event")


def insert_remote(conn: sqlite3.Connection, event: NewEvent, global_seq: int) -> int:
    """Insert a pulled record together with its sync mapping; returns its commit seq."""
    if _event_exists(conn, event.event_id):
        raise DuplicateEvent(event.event_id)
    _check_global_seq_free(conn, global_seq)
    if event.kind == KIND_EVENT and _version_holder(conn, event.aggregate_id, event.version):
        raise VersionTaken(event.aggregate_id, event.version)
    commit_seq = _insert(conn, event)
    conn.execute(
        "INSERT INTO sync_map (event_id, global_seq) VALUES (?, ?)", (event.event_id, global_seq)
    )
    return commit_seq


def mark_synced(conn: sqlite3.Connection, event_id: str, global_seq: int) -> None:
    """Record the server's sequence for a pushed event; repeating the same pair is a no-op."""
    row = conn.execute("SELECT global_seq FROM sync_map WHERE event_id = ?", (event_id,)).fetchone()
    if row is not None:
        if row[0] == global_seq:
            return  # a lost acknowledgement being replayed
        raise ImmutableEvent("INV-001: event is already synced under another sequence")
    if not _event_exists(conn, event_id):
        raise UnknownEvent(event_id)
    _check_global_seq_free(conn, global_seq)
    conn.execute(
        "INSERT INTO sync_map (event_id, global_seq) VALUES (?, ?)", (event_id, global_seq)
    )


def rewrite_pending(conn: sqlite3.Connection, event_id: str, version: int, record: bytes) -> None:
    """Give a pending event a new version and record (rebase); the trigger refuses synced rows."""
    row = conn.execute(
        "SELECT kind, aggregate_id FROM events WHERE event_id = ?", (event_id,)
    ).fetchone()
    if row is None:
        raise UnknownEvent(event_id)
    kind, aggregate_id = str(row[0]), str(row[1])
    if kind != KIND_EVENT:
        raise InvalidArgument("only events are rebased, not key records")
    if version < 1:
        raise InvalidArgument("an event has a version >= 1")
    holder = _version_holder(conn, aggregate_id, version)
    if holder is not None and holder != event_id:
        raise VersionTaken(aggregate_id, version)
    # No pre-check for "synced": the INV-001 trigger is the authority.
    conn.execute(
        "UPDATE events SET version = ?, record = ? WHERE event_id = ?", (version, record, event_id)
    )


def forget_sync_mappings(conn: sqlite3.Connection) -> int:
    """Delete every sync mapping; returns how many events are pending afterwards."""
    conn.execute("DELETE FROM sync_map")
    return count_pending(conn)


def count_events(conn: sqlite3.Connection) -> int:
    """Number of rows in the log, key records included."""
    row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    return int(row[0]) if row is not None else 0


def count_pending(conn: sqlite3.Connection) -> int:
    """Number of rows not yet synced."""
    row = conn.execute("SELECT COUNT(*) FROM pending").fetchone()
    return int(row[0]) if row is not None else 0


def get_event(conn: sqlite3.Connection, event_id: str) -> StoredEvent | None:
    """One row by event id."""
    row = conn.execute(
        select_events() + _FROM_EVENTS + " WHERE e.event_id = ?", (event_id,)
    ).fetchone()
    return stored_event(tuple(row)) if row is not None else None


def read_aggregate(
    conn: sqlite3.Connection, aggregate_id: str, after_version: int, batch_size: int
) -> Iterator[StoredEvent]:
    """Events (not key records) of one aggregate with version > after_version, in version order."""
    sql = (
        select_events() + _FROM_EVENTS + " WHERE e.aggregate_id = :aggregate_id"
        " AND e.kind = 'event' AND e.version > :after ORDER BY e.version LIMIT :limit"
    )
    return paginate(
        conn, sql, {"aggregate_id": aggregate_id}, after_version, lambda e: e.version, batch_size
    )


def read_commit_order(
    conn: sqlite3.Connection, after: int, batch_size: int
) -> Iterator[StoredEvent]:
    """Every row with commit_seq > after, in commit order."""
    sql = (
        select_events() + _FROM_EVENTS
        + " WHERE e.commit_seq > :after ORDER BY e.commit_seq LIMIT :limit"
    )
    return paginate(conn, sql, {}, after, lambda e: e.commit_seq, batch_size)


def read_pending(
    conn: sqlite3.Connection, batch_size: int, after: int = 0
) -> Iterator[StoredEvent]:
    """Rows without a sync mapping with commit_seq > after, in commit order."""
    sql = (
        select_events("NULL") + " FROM pending p CROSS JOIN events e ON e.commit_seq = p.commit_seq"
        " WHERE p.commit_seq > :after ORDER BY p.commit_seq LIMIT :limit"
    )
    return paginate(conn, sql, {}, after, lambda e: e.commit_seq, batch_size)


def _all_key_records(conn: sqlite3.Connection, batch_size: int) -> Iterator[StoredEvent]:
    # No index lists key records in commit order, and walking the log by commit seq
    # would read every event. Their commit seqs come from one of the small partial
    # indexes instead (rowids only, no row is read), sorted here, and each page of
    # rows is fetched by seq. A key record committed while the caller iterates has
    # a seq above all of these (seqs only grow): the next round finds it.
    check_batch_size(batch_size)
    done = 0
    while True:
        seqs = sorted(seq for (seq,) in conn.execute(_KEY_RECORD_SEQS) if seq > done)
        if not seqs:
            return
        for start in range(0, len(seqs), batch_size):
            page = json.dumps(seqs[start:start + batch_size])
            rows = conn.execute(_KEY_RECORDS_BY_SEQ, (page,)).fetchall()
            yield from [stored_event(row) for row in rows]
        done = seqs[-1]


def key_records(
    conn: sqlite3.Connection, aggregate_id: str | None, batch_size: int
) -> Iterator[StoredEvent]:
    """Key records (all, or one aggregate's) in commit order."""
    if aggregate_id is None:
        return _all_key_records(conn, batch_size)
    return paginate(
        conn,
        _AGGREGATE_KEY_RECORDS,
        {"aggregate_id": aggregate_id},
        0,
        lambda e: e.commit_seq,
        batch_size,
    )


def key_record(conn: sqlite3.Connection, key_id: str) -> StoredEvent | None:
    """The key record that introduced `key_id`, if present."""
    row = conn.execute(_KEY_RECORD_BY_KEY_ID, (key_id,)).fetchone()
    return stored_event(tuple(row)) if row is not None else None


# -- page-wise operations of sync ----------------------------------------------------
#
# A sync page holds up to a thousand records; these do for a whole page what the
# per-row functions above do for one, with one indexed query per check (the ids
# travel as a JSON array and are joined through json_each) and one executemany
# per table. They run the same checks and raise the same errors, for the first
# offending row in the order given.


def get_events(conn: sqlite3.Connection, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
    """Those of `event_ids` already in the log, by event id."""
    rows = conn.execute(
        select_events() + " FROM json_each(?) j CROSS JOIN events e ON e.event_id = j.value"
        " LEFT JOIN sync_map m ON m.event_id = e.event_id",
        (json.dumps(list(event_ids)),),
    ).fetchall()
    events = (stored_event(tuple(row)) for row in rows)
    return {event.event_id: event for event in events}


def versions_from(
    conn: sqlite3.Connection, lowest: Mapping[str, int]
) -> list[tuple[str, int, str, bool]]:
    """(aggregate id, version, event id, synced) of the events of each aggregate in `lowest`
    whose version is at least the one given for it."""
    rows = conn.execute(
        "SELECT e.aggregate_id, e.version, e.event_id, m.global_seq IS NOT NULL"
        " FROM json_each(?) j CROSS JOIN events e"
        " ON e.aggregate_id = j.key AND e.kind = 'event' AND e.version >= j.value"
        " LEFT JOIN sync_map m ON m.event_id = e.event_id",
        (json.dumps(dict(lowest)),),
    ).fetchall()
    result = []
    for aggregate_id, version, event_id, synced in rows:
        if not (isinstance(aggregate_id, str) and isinstance(version, int)
                and isinstance(event_id, str)):
            raise MalformedRow("event row has impossible column types")
        result.append((aggregate_id, version, event_id, bool(synced)))
    return result


def _present(conn: sqlite3.Connection, sql: str, values: Sequence[object]) -> set[object]:
    """The values of `values` that `sql` (one json_each parameter) finds."""
    return {row[0] for row in conn.execute(sql, (json.dumps(list(values)),))}


def insert_remote_many(conn: sqlite3.Connection, rows: Sequence[tuple[NewEvent, int]]) -> range:
    """`insert_remote` for each (event, global seq) in order, with one query per check.

    Returns the commit seqs given to the rows, in order: one statement inserts them,
    and SQLite gives each new row the highest rowid so far plus one, so the rows get
    consecutive seqs above every seq used before (no event row is ever deleted).
    """
    if not rows:
        return range(0)
    ids = [event.event_id for event, _ in rows]
    seqs = [seq for _, seq in rows]
    versions = [(e.aggregate_id, e.version) for e, _ in rows if e.kind == KIND_EVENT]
    keys = [event.key_id for event, _ in rows if event.kind == KIND_KEY]
    existing = _present(
        conn, "SELECT e.event_id FROM json_each(?) j CROSS JOIN events e ON e.event_id = j.value",
        ids,
    )
    mapped = _present(
        conn,
        "SELECT m.global_seq FROM json_each(?) j CROSS JOIN sync_map m ON m.global_seq = j.value",
        seqs,
    )
    held: set[tuple[object, object]] = {
        (aggregate_id, version)
        for aggregate_id, version in conn.execute(
            "SELECT e.aggregate_id, e.version FROM json_each(?) j CROSS JOIN events e"
            " ON e.aggregate_id = j.value ->> 0 AND e.version = j.value ->> 1"
            " AND e.kind = 'event'",
            (json.dumps(versions),),
        )
    } if versions else set()
    taken = _present(conn, _KEY_IDS_TAKEN, keys) if keys else set()
    if (
        existing or mapped or held or taken or min(seqs) < 1
        or len(set(ids)) < len(ids) or len(set(seqs)) < len(seqs)
        or len(set(versions)) < len(versions) or len(set(keys)) < len(keys)
    ):
        _refuse_first(rows, existing, mapped, held, taken)
    before = int(conn.execute("SELECT COALESCE(MAX(commit_seq), 0) FROM events").fetchone()[0])
    conn.executemany(
        _INSERT_EVENT,
        [
            (e.event_id, e.kind, e.aggregate_type, e.aggregate_id, e.version, e.key_id, e.record)
            for e, _ in rows
        ],
    )
    # Read before the sync_map inserts below move it (their rowid is the global seq).
    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    if last != before + len(rows):
        raise StoreError("the database did not hand out consecutive commit sequences")
    conn.executemany("INSERT INTO sync_map (event_id, global_seq) VALUES (?, ?)",
                     zip(ids, seqs, strict=True))
    return range(last - len(rows) + 1, last + 1)


def _refuse_first(
    rows: Sequence[tuple[NewEvent, int]],
    existing: set[object],
    mapped: set[object],
    held: set[tuple[object, object]],
    taken: set[object],
) -> None:
    """Raise what `insert_remote`, row after row, would raise first."""
    for event, global_seq in rows:
        if event.event_id in existing:
            raise DuplicateEvent(event.event_id)
        existing.add(event.event_id)
        if global_seq < 1:
            raise InvalidArgument("global sequences start at 1")
        if global_seq in mapped:
            raise StoreError(f"global sequence {global_seq} is already mapped to another event")
        mapped.add(global_seq)
        if event.kind == KIND_EVENT:
            if (event.aggregate_id, event.version) in held:
                raise VersionTaken(event.aggregate_id, event.version)
            held.add((event.aggregate_id, event.version))
        else:
            if event.key_id in taken:
                raise StoreError(f"key id {event.key_id} is already registered")
            taken.add(event.key_id)
    raise AssertionError("unreachable: the caller found a conflict")


def mark_synced_many(conn: sqlite3.Connection, pairs: Sequence[tuple[str, int]]) -> None:
    """`mark_synced` for each (event id, global seq) in order, with one query per check."""
    if not pairs:
        return
    ids = [event_id for event_id, _ in pairs]
    current: dict[object, object] = dict(
        conn.execute(
            "SELECT m.event_id, m.global_seq FROM json_each(?) j"
            " CROSS JOIN sync_map m ON m.event_id = j.value",
            (json.dumps(ids),),
        ).fetchall()
    )
    known = _present(
        conn,
        "SELECT e.event_id FROM json_each(?) j CROSS JOIN events e ON e.event_id = j.value",
        ids,
    )
    mapped = _present(
        conn,
        "SELECT m.global_seq FROM json_each(?) j CROSS JOIN sync_map m ON m.global_seq = j.value",
        [seq for _, seq in pairs],
    )
    new: list[tuple[str, int]] = []
    for event_id, global_seq in pairs:
        if event_id in current:
            if current[event_id] == global_seq:
                continue  # a lost acknowledgement being replayed
            raise ImmutableEvent("INV-001: event is already synced under another sequence")
        if event_id not in known:
            raise UnknownEvent(event_id)
        if global_seq < 1:
            raise InvalidArgument("global sequences start at 1")
        if global_seq in mapped:
            raise StoreError(f"global sequence {global_seq} is already mapped to another event")
        current[event_id] = global_seq
        mapped.add(global_seq)
        new.append((event_id, global_seq))
    conn.executemany("INSERT INTO sync_map (event_id, global_seq) VALUES (?, ?)", new)
