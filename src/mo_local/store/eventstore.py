"""EventStore: the one object through which the client reads and writes its SQLite store.

It owns the single-writer lock (INV-007), the connection, transactions and the
translation of sqlite3 errors; the SQL lives in `log`, `ordering` and `state`.
An EventStore is used from the thread that opened it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from types import TracebackType

from mo_local.store import log, ordering, state
from mo_local.store.connection import connect, guard, translate
from mo_local.store.errors import MalformedRow, SchemaTooNew, StoreCorrupt, StoreError
from mo_local.store.lock import StoreLock, lock_holder
from mo_local.store.records import Cursor, NewEvent, StoredEvent
from mo_local.store.schema import (
    MIGRATIONS,
    apply_migrations,
    has_foreign_tables,
    read_schema_version,
)

DEFAULT_BATCH_SIZE = 1000
# Page cache during bulk writes (sync). Inserts keyed by random UUIDs touch pages all
# over the indexes; past a few tens of thousands of events they no longer fit SQLite's
# default 2 MiB cache, and every row re-reads index pages from the file (measured:
# twice the insert time at 50k events).
BULK_CACHE_KIB = 64 * 1024


def lock_path_for(path: Path) -> Path:
    """The lock file that guards the store at `path`."""
    return path.with_suffix(".lock")


def _prepare_schema(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    # Reading the version is the cheap probe that a damaged file fails early;
    # PRAGMA quick_check would read the whole file on every open.
    found = read_schema_version(conn)
    if found == 0:
        if not create:
            raise StoreError(f"no store at {path}")
        if has_foreign_tables(conn):
            raise StoreError(f"{path} is an SQLite database but not a MO Local store")
    if found > len(MIGRATIONS):
        raise SchemaTooNew(found, len(MIGRATIONS))
    if found < len(MIGRATIONS):
        apply_migrations(conn, MIGRATIONS)
        if found >= 1:
            _compact_after_migration(conn)


def _compact_after_migration(conn: sqlite3.Connection) -> None:
    """Give back the pages a migration's table rebuild freed (a one-off VACUUM).

    Migration 2 copies the log into new tables; the old ones' pages stay in the
    file as free pages, about doubling its size (measured: 97 → 185 MB for 110,000
    rows, 0.5 s of VACUUM back to 95 MB). Every sequence is an INTEGER PRIMARY KEY,
    which VACUUM keeps. If it cannot run (say the disk is full) the store is
    complete and correct as it is, only larger: later writes reuse the free pages.
    """
    row = conn.execute("PRAGMA freelist_count").fetchone()
    if row is None or not row[0]:
        return
    with suppress(sqlite3.Error):
        conn.execute("VACUUM")
        # In WAL mode the VACUUM went through the WAL: a file as large as the store,
        # kept until the last connection closes unless truncated now.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class EventStore:
    """The local event log and its side tables, opened exclusively by one process."""

    def __init__(self, path: Path, lock: StoreLock, conn: sqlite3.Connection) -> None:
        """Use `EventStore.open`; this only binds what `open` prepared."""
        self._path = path
        self._lock = lock
        self._conn: sqlite3.Connection | None = conn
        self._depth = 0
        self._unit = False  # inside a unit(): nested transactions join it as it is

    # -- lifecycle -------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> EventStore:
        """Lock and open the store at `path` (creating it if asked), migrating it to this schema."""
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(f"no store at {path}")
        if create:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = StoreLock.acquire(lock_path_for(path))
        try:
            conn = connect(path, create=create)
            try:
                with guard(path):
                    _prepare_schema(conn, path, create=create)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            lock.release()
            raise
        return cls(path, lock, conn)

    def close(self) -> None:
        """Close the database, then release the lock; idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing checkpoints the WAL; the lock must outlive that write.
            with suppress(sqlite3.Error):
                conn.close()
        self._lock.release()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventStore(path={str(self._path)!r}, open={self._conn is not None})"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def lock_path(self) -> Path:
        """The lock file held while the store is open."""
        return self._lock.path

    @staticmethod
    def lock_holder(path: Path) -> int | None:
        """The pid holding the store at `path` (a database path), or None if it is free."""
        return lock_holder(lock_path_for(Path(path)))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is closed")
        return self._conn

    def _guard(self) -> AbstractContextManager[None]:
        return guard(self._path)

    # -- transactions ----------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error); an inner call joins the outer one.

        A nested call takes a savepoint, so that a failed inner step (e.g. a
        ConcurrencyError caught by the caller) leaves nothing behind.
        """
        return _Transaction(self, unit=False, translate_body=False)

    def unit(self) -> AbstractContextManager[None]:
        """A transaction that is all or nothing: an error inside rolls all of it back.

        Steps inside (`append`, `put_idempotency`, nested `transaction()`s) join it
        without savepoints of their own, which saves a SAVEPOINT and a RELEASE per
        step. The price is a contract: nothing inside may catch a store error and
        carry on writing; every error must leave the block, which then rolls back
        (to its own savepoint when it is itself nested in a transaction).
        """
        return _Transaction(self, unit=True, translate_body=False)

    @property
    def in_transaction(self) -> bool:
        """True inside `transaction()` or `unit()`: what is written there is not committed yet."""
        return self._depth > 0

    def changes(self) -> int:
        """A count that grows with every row this store writes, and never goes back.

        Equal counts at two moments mean nothing was written in between (the store
        is this process's alone, INV-007): derived state that was current at the
        first moment still is. Rolled-back writes count too, which only errs on the
        side of "something changed".
        """
        return self._db().total_changes

    def _write(self) -> AbstractContextManager[None]:
        # A transaction that also translates sqlite3 errors raised inside it.
        return _Transaction(self, unit=False, translate_body=True)

    def _bulk_write(self) -> AbstractContextManager[None]:
        # Its own transaction, or the open one as it is (no savepoint).
        return self._write() if self._depth == 0 else self._guard()

    @contextmanager
    def _large_cache(self, kib: int) -> Iterator[None]:
        conn = self._db()
        with self._guard():
            row = conn.execute("PRAGMA cache_size").fetchone()
            previous = int(row[0]) if row is not None else None
            if previous is not None and -kib < previous < 0:
                conn.execute(f"PRAGMA cache_size = {-int(kib)}")
            else:
                previous = None  # already as large (or counted in pages): leave it
        try:
            yield
        finally:
            if previous is not None and self._conn is not None:
                # Shrinking gives the extra pages back; a failure here changes no data.
                with suppress(sqlite3.Error):
                    self._conn.execute(f"PRAGMA cache_size = {previous}")

    def large_cache(self, kib: int = BULK_CACHE_KIB) -> AbstractContextManager[None]:
        """A page cache of up to `kib` KiB inside the block (bulk writes), the previous after."""
        return self._large_cache(kib)

    # -- meta ------------------------------------------------------------------

    def get_meta(self, key: str) -> bytes | None:
        """A meta value: store id, device id, vault header bytes…"""
        with self._guard():
            return state.get_meta(self._db(), key)

    def set_meta(self, key: str, value: bytes) -> None:
        """Set a meta value (plaintext non-secret, or an opaque encrypted blob)."""
        with self._write():
            state.set_meta(self._db(), key, value)

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._guard():
            return read_schema_version(self._db())

    # -- writes to the log ---------------------------------------------------

    def append(
        self, aggregate_id: str, expected_version: int, events: Sequence[NewEvent]
    ) -> list[int]:
        """Append rows of one aggregate atomically if it is at `expected_version`; commit seqs."""
        with self._write():
            return log.append(self._db(), aggregate_id, expected_version, events)

    def insert_remote(self, event: NewEvent, global_seq: int) -> int:
        """Insert a pulled record as synced under `global_seq`; returns its commit seq."""
        with self._write():
            return log.insert_remote(self._db(), event, global_seq)

    def insert_remote_many(self, rows: Sequence[tuple[NewEvent, int]]) -> range:
        """`insert_remote` of each (record, global seq) in order, as one write (sync pages).

        Returns the commit seqs the rows got, in order. Inside a transaction it joins
        it without a savepoint of its own (one would copy every page it touches to a
        sub-journal): if it fails, the caller must roll its transaction back, which
        letting the error propagate does.
        """
        with self._bulk_write():
            return log.insert_remote_many(self._db(), rows)

    def mark_synced_many(self, pairs: Sequence[tuple[str, int]]) -> None:
        """`mark_synced` of each (event id, global seq) in order, as one write (push acks).

        Joins an open transaction without a savepoint, like `insert_remote_many`.
        """
        with self._bulk_write():
            log.mark_synced_many(self._db(), pairs)

    def mark_synced(self, event_id: str, global_seq: int) -> None:
        """Record the global sequence the server assigned to a pushed event."""
        with self._write():
            log.mark_synced(self._db(), event_id, global_seq)

    def rewrite_pending(self, event_id: str, version: int, record: bytes) -> None:
        """Rebase a pending event to a new version and record; synced rows are refused (INV-001).

        When shifting several events of one aggregate up, rewrite the highest version first.
        """
        with self._write():
            log.rewrite_pending(self._db(), event_id, version, record)

    def forget_sync_mappings(self) -> int:
        """`mo sync reset`: every event becomes pending again; returns the pending count.

        Derived caches are dropped in the same transaction: their cursors name
        global sequences that no longer mean anything.
        """
        with self._write():
            state.clear_derived(self._db())
            return log.forget_sync_mappings(self._db())

    # -- reads of the log ----------------------------------------------------

    def current_version(self, aggregate_id: str) -> int:
        """Highest event version of the aggregate, 0 if none."""
        with self._guard():
            return log.current_version(self._db(), aggregate_id)

    def get_event(self, event_id: str) -> StoredEvent | None:
        """One row by event id, or None."""
        with self._guard():
            return log.get_event(self._db(), event_id)

    def get_events(self, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        """Those of `event_ids` in the log, by event id (one query for a sync page)."""
        with self._guard():
            return log.get_events(self._db(), event_ids)

    def versions_from(self, lowest: Mapping[str, int]) -> list[tuple[str, int, str, bool]]:
        """(aggregate id, version, event id, synced) of every event of each aggregate in
        `lowest` at or above the version given for it (one query for a sync page)."""
        with self._guard():
            return log.versions_from(self._db(), lowest)

    def read_aggregate(
        self, aggregate_id: str, after_version: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[StoredEvent]:
        """The aggregate's events (not key records) after `after_version`, in version order."""
        with self._guard():
            yield from log.read_aggregate(self._db(), aggregate_id, after_version, batch_size)

    def key_records(
        self, aggregate_id: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[StoredEvent]:
        """Key records, all or one aggregate's, in commit order."""
        with self._guard():
            yield from log.key_records(self._db(), aggregate_id, batch_size)

    def key_record(self, key_id: str) -> StoredEvent | None:
        """The key record that introduced `key_id`, or None."""
        with self._guard():
            return log.key_record(self._db(), key_id)

    def read_commit_order(
        self, after: int = 0, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> Iterator[StoredEvent]:
        """Every row with commit_seq > after, in commit order, streamed page by page."""
        with self._guard():
            yield from log.read_commit_order(self._db(), after, batch_size)

    def read_effective_order(
        self, after: Cursor = Cursor(), batch_size: int = DEFAULT_BATCH_SIZE  # noqa: B008
    ) -> Iterator[StoredEvent]:
        """Rows outside the applied set of `after`, in effective order, streamed page by page."""
        with self._guard():
            yield from ordering.read_effective_order(self._db(), after, batch_size)

    def cursor_is_prefix(self, cursor: Cursor) -> bool:
        """True iff the applied set of `cursor` still prefixes the effective order (INV-011)."""
        with self._guard():
            return ordering.cursor_is_prefix(self._db(), cursor)

    def covers_events(self, cursor: Cursor) -> bool:
        """True iff every event (key records aside) is in the applied set of `cursor`."""
        with self._guard():
            return ordering.covers_events(self._db(), cursor)

    @staticmethod
    def advance(cursor: Cursor, event: StoredEvent) -> Cursor:
        """The cursor after applying `event` (read in effective order)."""
        return ordering.advance(cursor, event)

    def effective_head(self) -> Cursor:
        """The cursor after the last event in effective order."""
        with self._guard():
            return ordering.effective_head(self._db())

    def pending(
        self, batch_size: int = DEFAULT_BATCH_SIZE, after: int = 0
    ) -> Iterator[StoredEvent]:
        """Rows without a sync mapping (events and key records) with commit_seq > after,
        in commit order."""
        with self._guard():
            yield from log.read_pending(self._db(), batch_size, after)

    def count_events(self) -> int:
        """Number of rows in the log, key records included."""
        with self._guard():
            return log.count_events(self._db())

    def count_pending(self) -> int:
        """Number of rows not yet synced."""
        with self._guard():
            return log.count_pending(self._db())

    # -- sync state, derived caches, idempotency, conflicts -------------------

    def get_sync_state(self, key: str) -> bytes | None:
        """A sync state value, or None."""
        with self._guard():
            return state.get_sync_state(self._db(), key)

    def set_sync_state(self, key: str, value: bytes | None) -> None:
        """Set a sync state value; None deletes it."""
        with self._write():
            state.set_sync_state(self._db(), key, value)

    def load_derived(self, name: str, scope: str) -> tuple[Cursor, bytes] | None:
        """A derived cache (cursor, encrypted blob), or None."""
        with self._guard():
            return state.load_derived(self._db(), name, scope)

    def save_derived(self, name: str, scope: str, cursor: Cursor, blob: bytes) -> None:
        """Replace a derived cache and its cursor."""
        with self._write():
            state.save_derived(self._db(), name, scope, cursor, blob)

    def clear_derived(self) -> None:
        """Drop every derived cache."""
        with self._write():
            state.clear_derived(self._db())

    def get_idempotency(self, key: bytes) -> tuple[bytes, bytes] | None:
        """(fingerprint, result) recorded under an idempotency key, or None."""
        with self._guard():
            return state.get_idempotency(self._db(), key)

    def put_idempotency(self, key: bytes, fingerprint: bytes, result: bytes) -> None:
        """Record the first result of an idempotency key."""
        with self._write():
            state.put_idempotency(self._db(), key, fingerprint, result)

    def add_conflict(self, blob: bytes) -> int:
        """Record an encrypted conflict; returns its id."""
        with self._write():
            return state.add_conflict(self._db(), blob)

    def conflicts(self) -> list[bytes]:
        """Every recorded conflict blob, oldest first."""
        with self._guard():
            return state.conflicts(self._db())

    def clear_conflicts(self) -> None:
        """Forget every recorded conflict."""
        with self._write():
            state.clear_conflicts(self._db())

    # -- diagnostics -----------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """Rows of PRAGMA integrity_check: ['ok'] when the file is sound."""
        with self._guard():
            return [str(row[0]) for row in self._db().execute("PRAGMA integrity_check")]


def _translated(exc: BaseException, path: Path) -> BaseException | None:
    """What `guard` turns an error into, or None for errors it lets through."""
    if isinstance(exc, sqlite3.Error):
        return translate(exc, path)
    if isinstance(exc, MalformedRow):
        return StoreCorrupt(path, "malformed row")
    if isinstance(exc, UnicodeDecodeError):
        return StoreCorrupt(path, "undecodable text")
    return None


def _rollback(conn: sqlite3.Connection, savepoint: str | None) -> None:
    with suppress(sqlite3.Error):
        if savepoint is None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        else:
            conn.execute(f"ROLLBACK TO {savepoint}")
            conn.execute(f"RELEASE {savepoint}")


class _Transaction:
    """`EventStore.transaction()`, `unit()` and `_write()` as one plain context manager.

    A class rather than stacked generator context managers: every command enters
    a few of these, and each generator-based layer cost more than its SQL.
    """

    __slots__ = ("_outer_unit", "_savepoint", "_store", "_translate", "_unit")

    def __init__(self, store: EventStore, *, unit: bool, translate_body: bool) -> None:
        self._store = store
        self._unit = unit
        self._translate = translate_body
        self._savepoint: str | None = None
        self._outer_unit = False

    def __enter__(self) -> None:
        store = self._store
        conn = store._db()
        depth = store._depth
        self._outer_unit = store._unit
        try:
            if depth == 0:
                conn.execute("BEGIN IMMEDIATE")
                store._unit = self._unit
            elif not store._unit:
                name = f"mo_sp_{depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._savepoint = name
                store._unit = self._unit
            # else: inside a unit, joined as it is
        except sqlite3.Error as exc:
            raise translate(exc, store._path) from None
        store._depth = depth + 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        store = self._store
        depth = store._depth - 1
        try:
            conn = store._db()
            top = depth == 0
            if exc is None:
                if top or self._savepoint is not None:
                    try:
                        conn.execute("COMMIT" if top else f"RELEASE {self._savepoint}")
                    except sqlite3.Error as error:
                        if top:
                            _rollback(conn, None)
                        raise translate(error, store._path) from None
                return
            if top or self._savepoint is not None:
                _rollback(conn, None if top else self._savepoint)
            if self._translate:
                translated = _translated(exc, store._path)
                if translated is not None:
                    raise translated from None
        finally:
            store._depth = depth
            store._unit = self._outer_unit
