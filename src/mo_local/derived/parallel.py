"""Rebuilds on two cores: each share of the aggregates folded by its own process.

Nothing in a reducer looks at another aggregate, so the read model is a set of
independent per-aggregate folds. The log can therefore be split by aggregate id
into two partitions, each folded in effective order on its own core, and the
halves merged: their entries are disjoint, the goal → projects index is derived
from the project states (`ReadModel.restore`), conflicts are interleaved by their
effective-order positions, and the cursor takes the larger of each sequence —
exactly what one sequential replay gives (tests compare the two).

How it runs:

1. The parent forks first. Only the parent ever touches SQLite: a connection must
   not cross a fork, and even a connection opened afresh in the child would share
   the parent's per-file lock bookkeeping inside the SQLite library (POSIX
   advisory locks belong to a process, and the child inherits the library's
   record of the parent's), so the child's reads would not hold the locks they
   believe they hold. The child opens and folds the rows it is sent, with the
   keys it inherited (`EncryptedLog.detach_store` turns a missing key into an
   error instead of a query).
2. The parent reads the whole log once, in effective order, and routes each row
   by its aggregate: the child's rows (records still sealed) are streamed to it
   through a pipe as they come, the parent's own are opened and folded at once.
   Nothing is read ahead of the fork, so both cores start together. An aggregate
   goes to the side that has time for it when its first row comes: to the child
   while the child keeps up with what it was sent, to the parent otherwise. So the
   split follows the two processes' actual speeds (the parent also reads every
   row; either core may be slowed by other work) and both finish together.
3. The child sends its partial read model back through a second pipe as snapshot
   bytes (the cache codec) plus its conflicts' positions, and exits with
   `os._exit` (no finalizers, no flushing of the parent's buffers).

Anything unexpected — a child that fails, dies or overruns its deadline, an event
that fails to open in either half, row counts that do not add up — discards the
parallel result and the caller replays on one core, which reports errors exactly
as before. It is used only where fork() exists, at least two cores are
available and the process runs no other thread (a lock held by another thread
at fork time could never be released in the child).

Security: the first pipe carries sealed records, exactly as stored; the second
carries read-model plaintext between two processes of the same user that already
share the same keys in memory. Nothing is written to disk, and the child's memory
is gone when it exits (docs/security.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import heapq
import marshal
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import NoReturn

import cbor2

from mo_local.derived.conflicts import ConflictRecord
from mo_local.derived.readmodel import Entry, ReadModel
from mo_local.derived.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from mo_local.eventlog import REPLAY_PAGE_SIZE, EncryptedLog, EventLogError, OpenedEvent
from mo_local.store.eventstore import EventStore
from mo_local.store.records import Cursor, StoredEvent

# Below this many rows a second process costs more than it saves (fork, merge).
MIN_EVENTS = 20_000
# Above this many, one core. Rows are streamed, so neither process holds more of
# the log than a pipe's worth; the bound caps the deadline below and the child's
# answer (its share of the read model, held as bytes, then decoded). Checked on
# 400k rows: 1.9 times the one-core speed, equal results, 230 MB peak.
MAX_EVENTS = 1_000_000
# Rows per message to the child: large enough that a message costs little next to
# its rows, small enough that the child starts at once and that "the child keeps
# up" is judged often.
_BATCH_ROWS = 64
_FORMAT = 2
# By default the parent keeps the aggregates first met in the last 1/_PARENT_TAIL
# of the rows (about what the child takes to finish and answer, on 100k rows).
_PARENT_TAIL = 50
# The parent queues what the pipe cannot take yet, up to this much, before it
# waits for the child (which bounds its memory if the child falls behind).
_MAX_QUEUED_BYTES = 8 << 20
# The pipe's buffer: what the child may be behind by before new aggregates stay
# with the parent (a few hundred rows: milliseconds of work).
_PIPE_BYTES = 256 << 10
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
    store: EventStore,
    log: EncryptedLog,
    *,
    total: int | None = None,
    deadline_s: float | None = None,
    split: Callable[[str], bool] | None = None,
) -> Folded | None:
    """Fold the whole log on two cores; None if that did not work out (replay instead).

    `total` is the store's row count if the caller has it. `split(aggregate_id)`
    says which aggregates the child folds (tests); by default each goes to
    whichever side has time for it (see the module docstring).
    """
    if total is None:
        total = store.count_events()
    if deadline_s is None:
        deadline_s = max(_MIN_DEADLINE_S, total / _EVENTS_PER_DEADLINE_S)
    # No cycle collection in the parent meanwhile: a collection visits every object,
    # and after fork() each visit to a page still shared with the child copies it
    # (measured: about a tenth of the parent's time). Replays make little cyclic
    # garbage; what there is goes at the next collection after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _rebuild_in_two(store, log, total, deadline_s, split)
    finally:
        if collecting:
            gc.enable()


def _rebuild_in_two(
    store: EventStore,
    log: EncryptedLog,
    total: int,
    deadline_s: float,
    split: Callable[[str], bool] | None,
) -> Folded | None:
    rows_read, rows_write = os.pipe()
    answer_read, answer_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (rows_read, rows_write, answer_read, answer_write):
            os.close(fd)
        return None
    if pid == 0:
        _child(log, rows_read, answer_write, close=(rows_write, answer_read))
    os.close(rows_read)
    os.close(answer_write)
    deadline = time.monotonic() + deadline_s
    child_done = False
    sender = _Sender(rows_write, deadline)  # owns rows_write from here on
    try:
        mine = ReadModel()
        mine.track_positions()
        rows = store.read_effective_order(Cursor(), REPLAY_PAGE_SIZE)
        if split is None:
            # By speed, except for aggregates first met in the last rows: the parent
            # folds those while the child finishes its backlog and encodes its answer.
            router = _Router(rows, sender, sender.keeping_up, total - total // _PARENT_TAIL)
        else:
            router = _Router(rows, sender, split)
        try:
            sender.start()
            cursor, applied = _fold(mine, log.opened_rows(router))
            router.flush()
            sender.finish()
        except (EventLogError, _ChildLost):
            return None  # the sequential replay reports it at its exact position
        data = _read_until_eof(answer_read, deadline)
        child_done = data is not None
    finally:
        sender.close()
        os.close(answer_read)
        _reap(pid, kill=not child_done)
    if data is None or router.rows != total:
        return None
    result = _decode(data)
    if result is None or result[3] != router.sent:
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


# -- the parent ---------------------------------------------------------------------


class _ChildLost(Exception):
    """The child stopped reading (it died or overran the deadline)."""


class _Sender:
    """Length-prefixed messages to the child over a non-blocking pipe, queued when full.

    The parent never waits for the child while it has its own rows to fold, unless
    the queue outgrows _MAX_QUEUED_BYTES; waits are bounded by the deadline.
    """

    def __init__(self, fd: int, deadline: float) -> None:
        self._fd: int | None = fd
        self._deadline = deadline
        self._queue: list[memoryview] = []
        self._queued = 0

    def start(self) -> None:
        """Make the pipe non-blocking (and larger than 64 KiB where Linux allows)."""
        fd = self._fd
        if fd is None:
            raise _ChildLost
        try:
            os.set_blocking(fd, False)
        except OSError as exc:
            raise _ChildLost from exc
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)

    def send(self, message: bytes) -> None:
        self._queue.append(memoryview(len(message).to_bytes(4, "little") + message))
        self._queued += 4 + len(message)
        self._drain()
        while self._queued > _MAX_QUEUED_BYTES:
            self._wait()
            self._drain()

    def keeping_up(self, _aggregate_id: str = "") -> bool:
        """True if the pipe took everything sent so far: the child is not far behind."""
        if self._queue:
            self._drain()
        return not self._queue

    def finish(self) -> None:
        """Send everything queued, then end the stream (the child sees EOF)."""
        self._drain()
        while self._queue:
            self._wait()
            self._drain()
        self.close()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _drain(self) -> None:
        fd = self._fd
        if fd is None:
            raise _ChildLost
        queue = self._queue
        while queue:
            chunk = queue[0]
            try:
                written = os.write(fd, chunk)
            except BlockingIOError:
                return
            except OSError as exc:  # EPIPE: the child is gone
                raise _ChildLost from exc
            self._queued -= written
            if written == len(chunk):
                queue.pop(0)
            else:
                queue[0] = chunk[written:]

    def _wait(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or self._fd is None:
            raise _ChildLost
        select.select([], [self._fd], [], remaining)


class _Router:
    """The log's rows in effective order: the child's are sent, the parent's passed on."""

    def __init__(
        self,
        rows: Iterable[StoredEvent],
        sender: _Sender,
        to_child: Callable[[str], bool],
        child_until: int | None = None,
    ) -> None:
        self._rows = rows
        self._sender = sender
        self._to_child = to_child
        # From this row on, aggregates met for the first time stay with the parent.
        self._child_until = child_until
        # Aggregate id → True if the child folds it: decided at its first row.
        self._sides: dict[str, bool] = {}
        self._batch: list[tuple[object, ...]] = []
        self.rows = 0  # every row read, events and key records alike
        self.sent = 0  # rows sent to the child

    def __iter__(self) -> Iterator[StoredEvent]:
        sides = self._sides
        to_child = self._to_child
        child_until = self._child_until if self._child_until is not None else sys.maxsize
        batch = self._batch
        count = self.rows
        try:
            for row in self._rows:
                count += 1
                aggregate_id = row.aggregate_id
                child = sides.get(aggregate_id)
                if child is None:
                    child = sides[aggregate_id] = count < child_until and to_child(aggregate_id)
                if not child:
                    yield row
                    continue
                batch.append(tuple(row))
                if len(batch) >= _BATCH_ROWS:
                    self.flush()
        finally:
            self.rows = count

    def flush(self) -> None:
        """Send the rows gathered so far."""
        batch = self._batch
        if batch:
            # marshal: plain tuples of ints, text, bytes and None between two
            # processes of the same program, the fastest codec for them.
            self._sender.send(marshal.dumps(batch))
            self.sent += len(batch)
            batch.clear()


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


# -- the child ----------------------------------------------------------------------


class _Received:
    """The rows the parent streams, as StoredEvents, until it closes the pipe."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.rows = 0

    def __iter__(self) -> Iterator[StoredEvent]:
        # StoredEvent(*row) in C: what StoredEvent._make does, without its Python frame.
        make = partial(tuple.__new__, StoredEvent)
        with open(self._fd, "rb", buffering=_PIPE_BYTES) as stream:
            while True:
                head = stream.read(4)
                if not head:
                    return
                if len(head) != 4:
                    raise EOFError("truncated message")
                size = int.from_bytes(head, "little")
                message = stream.read(size)
                if len(message) != size:
                    raise EOFError("truncated message")
                # The parent checked each row (store.records.stored_event) when it read it.
                rows = marshal.loads(message)  # noqa: S302 - from our own parent
                self.rows += len(rows)
                yield from map(make, rows)


def _child(log: EncryptedLog, rows_fd: int, answer_fd: int, *, close: tuple[int, ...]) -> NoReturn:
    code = 1
    try:
        for fd in close:
            os.close(fd)
        # Objects inherited from the parent (its SQLite connection above all) must
        # never be finalized here; nothing this short-lived needs the cycle collector.
        gc.disable()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        log.detach_store()
        model = ReadModel()
        model.track_positions()
        received = _Received(rows_fd)
        cursor, applied = _fold(model, log.opened_rows(received))
        body = cbor2.dumps(
            [
                _FORMAT,
                encode_snapshot(model),
                [list(p) for p in model.conflict_positions()],
                cursor.synced,
                cursor.committed,
                applied,
                received.rows,
            ]
        )
        with open(answer_fd, "wb", closefd=True) as out:
            out.write(body)
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the parent falls back
        code = 1
    finally:
        os._exit(code)
