"""Rebuilds on two cores: each half of the aggregates folded by its own process.

Nothing in a reducer looks at another aggregate, so the read model is a set of
independent per-aggregate folds. The log can therefore be split by aggregate id
into two partitions, each folded in effective order on its own core, and the
halves merged: their entries are disjoint, the goal → projects index is derived
from the project states (`ReadModel.restore`), conflicts are interleaved by their
effective-order positions, and the cursor takes the larger of each sequence —
exactly what one sequential replay gives (tests compare the two).

How it runs:

1. The parent reads the child's partition from SQLite (rows only, still
   encrypted) and forks. A SQLite connection must never be used across fork(),
   so the child touches no database at all: it opens and folds the rows it
   inherited, with the keys it inherited (`EncryptedLog.detach_store` turns a
   missing key into an error instead of a query).
2. Meanwhile the parent streams and folds its own partition.
3. The child sends its partial read model back through a pipe as snapshot bytes
   (the cache codec) plus its conflicts' positions, and exits with `os._exit`
   (no finalizers, no flushing of the parent's buffers).

Anything unexpected — a child that fails, dies or overruns its deadline, an event
that fails to open in either half, row counts that do not add up — discards the
parallel result and the caller replays on one core, which reports errors exactly
as before. It is used only where fork() exists, at least two cores are
available and the process runs no other thread (a lock held by another thread
at fork time could never be released in the child).

Security: the pipe carries read-model plaintext between two processes of the
same user that already share the same keys in memory; nothing is written to
disk, and the child's memory is gone when it exits (docs/security.md).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NoReturn

import cbor2

from mo_local.derived.conflicts import ConflictRecord
from mo_local.derived.readmodel import Entry, ReadModel
from mo_local.derived.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from mo_local.eventlog import REPLAY_PAGE_SIZE, EncryptedLog, EventLogError, OpenedEvent
from mo_local.store.eventstore import EventStore
from mo_local.store.ordering import BUCKETS
from mo_local.store.records import Cursor, StoredEvent, stored_event

# Below this many rows a second process costs more than it saves (fork, merge).
MIN_EVENTS = 20_000
# Above this many, one core: the child's rows are held in memory before the fork
# (about 0.9 KB each, so ~150 MB at this size), and replays otherwise stream.
MAX_EVENTS = 300_000
# The child folds the aggregates of buckets [_SPLIT, BUCKETS) — 9 of the 16 UUID
# buckets — and the parent the rest: the parent also reads every row from SQLite
# (the child's before the fork), so the child takes the larger share.
_SPLIT = 8
_FORMAT = 1
# Generous: the child folds half the log at tens of thousands of events per
# second; this only bounds how long a stuck child can delay the fallback.
_MIN_DEADLINE_S = 60.0
_EVENTS_PER_DEADLINE_S = 2_000


@dataclass(frozen=True)
class Folded:
    """A rebuilt read model with its cursor and the number of events applied."""

    model: ReadModel
    cursor: Cursor
    applied: int


def available() -> bool:
    """True if a parallel rebuild may run in this process (fork, two cores, one thread)."""
    # Linux only: elsewhere fork() without exec is discouraged (macOS system libraries).
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores >= 2


def rebuild_in_two(
    store: EventStore, log: EncryptedLog, *, deadline_s: float | None = None
) -> Folded | None:
    """Fold the whole log on two cores; None if that did not work out (replay instead)."""
    total = store.count_events()
    theirs_rows = store.effective_bucket_rows(_SPLIT, BUCKETS)
    if deadline_s is None:
        deadline_s = max(_MIN_DEADLINE_S, total / _EVENTS_PER_DEADLINE_S)
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:
        _child(read_fd, write_fd, log, theirs_rows)
    os.close(write_fd)
    theirs_count = len(theirs_rows)
    del theirs_rows
    deadline = time.monotonic() + deadline_s
    child_done = False
    try:
        mine = ReadModel()
        mine.track_positions()
        counted = _Counter(store.read_effective_buckets(0, _SPLIT, REPLAY_PAGE_SIZE))
        try:
            cursor, applied = _fold(mine, log.opened_rows(counted))
        except EventLogError:
            return None  # the sequential replay reports it at its exact position
        data = _read_until_eof(read_fd, deadline)
        child_done = data is not None
    finally:
        os.close(read_fd)
        _reap(pid, kill=not child_done)
    if data is None or counted.rows + theirs_count != total:
        return None
    result = _decode(data)
    if result is None or result[3] != theirs_count:
        return None
    other, other_cursor, other_applied, _ = result
    log.opened += other_applied  # events the child decrypted on this log's behalf
    model = _merge(mine, other)
    if model is None:
        return None
    merged_cursor = Cursor(
        max(cursor.synced, other_cursor.synced), max(cursor.committed, other_cursor.committed)
    )
    return Folded(model, merged_cursor, applied + other_applied)


# -- both sides ---------------------------------------------------------------------


class _Counter:
    """Passes rows through, counting them (events and key records alike)."""

    def __init__(self, rows: Iterable[StoredEvent]) -> None:
        self._rows = rows
        self.rows = 0

    def __iter__(self) -> Iterator[StoredEvent]:
        for row in self._rows:
            self.rows += 1
            yield row


def _fold(model: ReadModel, opened: Iterable[OpenedEvent]) -> tuple[Cursor, int]:
    """Apply events in (partition) effective order; the cursor over them and their count."""
    apply = model.apply
    synced = committed = applied = 0
    for event in opened:
        apply(event)
        stored = event.stored
        global_seq = stored.global_seq
        if global_seq is None:
            if stored.commit_seq > committed:
                committed = stored.commit_seq
        elif global_seq > synced:
            synced = global_seq
        applied += 1
    return Cursor(synced, committed), applied


# -- the child ----------------------------------------------------------------------


def _child(
    read_fd: int, write_fd: int, log: EncryptedLog, rows: list[tuple[object, ...]]
) -> NoReturn:
    code = 1
    try:
        os.close(read_fd)
        # Objects inherited from the parent (its SQLite connection above all) must
        # never be finalized here; nothing this short-lived needs the cycle collector.
        gc.disable()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        log.detach_store()
        model = ReadModel()
        model.track_positions()
        # The rows were read unchecked before the fork: check each one here.
        cursor, applied = _fold(model, log.opened_rows(map(stored_event, rows)))
        body = cbor2.dumps(
            [
                _FORMAT,
                encode_snapshot(model),
                [list(p) for p in model.conflict_positions()],
                cursor.synced,
                cursor.committed,
                applied,
                len(rows),
            ]
        )
        with open(write_fd, "wb", closefd=True) as out:
            out.write(body)
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the parent falls back
        code = 1
    finally:
        os._exit(code)


# -- the parent ---------------------------------------------------------------------


def _read_until_eof(fd: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int, *, kill: bool) -> None:
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


_Positions = list[tuple[int, int]]


def _decode(data: bytes) -> tuple[ReadModel, Cursor, int, int] | None:
    """The child's model (with positions tracked), cursor, events applied and rows read."""
    try:
        body = cbor2.loads(data)
    except Exception:  # noqa: BLE001 - a truncated or garbled answer means "fall back"
        return None
    if not (isinstance(body, list) and len(body) == 7 and body[0] == _FORMAT):
        return None
    _, snapshot, positions, synced, committed, applied, rows = body
    if not (
        isinstance(snapshot, bytes)
        and all(type(v) is int for v in (synced, committed, applied, rows))
        and isinstance(positions, list)
        and all(
            isinstance(p, list) and len(p) == 2 and all(type(v) is int for v in p)
            for p in positions
        )
    ):
        return None
    try:
        model = decode_snapshot(snapshot)
    except SnapshotError:
        return None
    if len(positions) != len(model.conflicts()) or model.applied != applied:
        return None
    model.set_conflict_positions([(p[0], p[1]) for p in positions])
    return model, Cursor(synced, committed), applied, rows


def _merge(mine: ReadModel, theirs: ReadModel) -> ReadModel | None:
    entries: dict[str, Entry] = dict(mine.entries())
    for aggregate_id, entry in theirs.entries():
        if aggregate_id in entries:
            return None  # partitions overlap: impossible unless something is badly off
        entries[aggregate_id] = entry
    conflicts: list[ConflictRecord] = [
        conflict
        for _, conflict in heapq.merge(
            zip(mine.conflict_positions(), mine.conflicts(), strict=True),
            zip(theirs.conflict_positions(), theirs.conflicts(), strict=True),
            key=lambda item: item[0],
        )
    ]
    model = ReadModel()
    model.restore(entries, conflicts, mine.applied + theirs.applied)
    return model
