"""Pulled records authenticated on a second core while this one applies them.

A large pull spends about as long authenticating records (two AES-GCM opens and
the header checks per record) as inserting them. `PageVerifier` forks a child
that runs the same checks (`PulledRecordOpener`) on each page as soon as it is
fetched, while the parent inserts the page before it; the parent then reads the
child's verdicts instead of opening the records itself.

With a folder (the projector of a device that follows its pull, see
`SyncEngine`), the child also folds the events the parent has committed into
its copy of the read model — it holds their plaintext already — and hands the
model back at the end (`finish`), so the parent neither decodes nor folds them.

A verdict is a hint the parent may rely on, never a requirement: for every
record the child answers either the header it authenticated together with the
opened payload (for a key record: the DEK it unwrapped, which the parent installs
without unwrapping it again), or None — "check it yourself" — for records whose
key the child has not seen, and for anything that failed. Whenever the child
does not answer in time, answers something malformed, or the pipe breaks, the
verifier stops and the parent authenticates everything itself, exactly as
without it. A record that fails authentication is therefore always reported by
the parent, at its position.

The child is a fork of this process: it holds the same keys already, reads only
the pipe, writes plaintext payloads and unwrapped DEKs only to the parent through
the other pipe
(never to a file), touches neither SQLite nor the network, and ends with
`os._exit`. Forking is done only on Linux, in a single-threaded process (like
derived/parallel.py); the engine starts the verifier before its fetch thread.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import logging
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Sequence
from typing import NoReturn, Protocol

from mo_local.crypto.records import KIND_EVENT, KIND_KEY, Dek, PulledRecordOpener
from mo_local.eventlog import Envelope, OpenedEvent
from mo_local.store.records import StoredEvent

log = logging.getLogger("mo_local.sync")

# (kind, aggregate_type, aggregate_id, version, key_id, payload) or None; for a key
# record the payload is the unwrapped DEK.
Verdict = tuple[str, str, str, int, str, bytes] | None
# A committed event the child did not verify: (seq, event id, verdict).
Extra = tuple[int, str, tuple[str, str, str, int, str, bytes]]


class ForkFolder(Protocol):
    """Derived state that a forked child can fold into and hand back (the projector)."""

    def fold_in_fork(self, events: Sequence[OpenedEvent]) -> None:
        """In the child: fold synced events after its cursor, touching no store."""
        ...

    def forked_state(self) -> bytes:
        """In the child: what the parent installs."""
        ...

_FRAME = struct.Struct(">I")
# A page of records takes a few milliseconds; this long without an answer means
# something is wrong with the child, and the parent goes on alone.
ANSWER_TIMEOUT_S = 30.0
# Committed events the child folds between two looks at its pipe.
FOLD_CHUNK = 256


def available() -> bool:
    """True if a verifier may be forked here (Linux, two cores, one thread)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return cores >= 2


class PageVerifier:
    """A forked child authenticating pulled pages in the order they are submitted.

    `submit` may run on the engine's fetch thread, `receive` on the main thread;
    every submitted page is received once, in order, or the verifier is closed.
    """

    def __init__(self, pid: int, to_child: int, from_child: int) -> None:
        self._pid = pid
        self._to_child = to_child
        self._from_child = from_child
        self._writing = threading.Lock()  # pages come from the fetch thread, folds from main
        self._broken = False
        self._submitted = 0
        self._received = 0
        self.verified = 0  # records the child authenticated (diagnostics, tests)

    @classmethod
    def start(cls, opener: PulledRecordOpener,
              folder: ForkFolder | None = None) -> PageVerifier | None:
        """Fork the child (folding into `folder`'s copy, if given); None if not possible."""
        if not available():
            return None
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            return None
        if pid == 0:
            os.close(to_child_w)
            os.close(from_child_r)
            _child(to_child_r, from_child_w, opener, folder)
        os.close(to_child_r)
        os.close(from_child_w)
        return cls(pid, to_child_w, from_child_r)

    @property
    def active(self) -> bool:
        """False once the verifier stopped (closed, or something went wrong)."""
        return not self._broken

    def submit(self, records: Sequence[tuple[int, str, bytes]]) -> None:
        """Queue a page of (seq, event id, record); a failure only stops the verifier."""
        if self._send(("page", list(records))):
            self._submitted += 1

    def fold(self, through: int, extra: Sequence[Extra]) -> None:
        """Have the child fold every event up to sequence `through` (all committed).

        Those are the events it verified plus `extra`, the ones it did not.
        """
        self._send(("fold", (through, list(extra))))

    def finish(self) -> bytes | None:
        """The folder's state after every fold sent, or None (then fold here instead)."""
        if not self._send(("finish", None)):
            return None
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        # Answers to pages fetched but not applied come first: skip them.
        for _ in range(self._submitted - self._received + 1):
            body = _read_frame(self._from_child, deadline)
            if body is None:
                break
            try:
                tag, value = pickle.loads(body)  # noqa: S301 - from the forked child only
            except Exception:  # noqa: BLE001 - garbled: no state
                break
            if tag == "state":
                return value if isinstance(value, bytes) else None
        self.close()
        return None

    def _send(self, message: tuple[str, object]) -> bool:
        body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        with self._writing:
            # Checked under the lock: `close` closes the pipe only while holding it.
            if self._broken:
                return False
            try:
                _write_frame(self._to_child, body)
            except OSError:
                self._broken = True
                return False
        return True

    def receive(self, expected: int) -> list[Verdict] | None:
        """The verdicts of the oldest submitted page, or None (then check every record)."""
        if self._broken or self._received >= self._submitted:
            return None
        self._received += 1
        body = _read_frame(self._from_child, time.monotonic() + ANSWER_TIMEOUT_S)
        verdicts = _parse(body, expected) if body is not None else None
        if verdicts is None:
            log.info("sync: the record verifier stopped; verifying here")
            self.close()
            return None
        self.verified += sum(1 for v in verdicts if v is not None)
        return verdicts

    def close(self) -> None:
        """Stop the child (it may be waiting for a page that will not come)."""
        if self._pid == 0:
            return
        self._broken = True
        pid, self._pid = self._pid, 0
        # The child first: a page being written to it on the fetch thread then fails
        # (EPIPE) and releases the lock, and only then are the descriptors closed, so
        # that thread never writes to a number the process has reused meanwhile.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        with self._writing:
            for fd in (self._to_child, self._from_child):
                with contextlib.suppress(OSError):
                    os.close(fd)


# -- the child ----------------------------------------------------------------------


def _child(read_fd: int, write_fd: int, opener: PulledRecordOpener,
           folder: ForkFolder | None) -> NoReturn:
    code = 1
    try:
        # Objects inherited from the parent (its SQLite connection above all) must
        # never be finalized here; nothing this short-lived needs the cycle collector.
        gc.disable()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        deks: dict[str, Dek] = {}
        # Verified events not known to be committed yet, in sequence order, and the
        # committed ones still to fold: (seq, event id, verdict).
        unfolded: list[Extra] = []
        ready: list[Extra] = []
        done = 0  # of `ready`
        while True:
            if done < len(ready) and not _readable(read_fd):
                # Nothing to verify right now: fold a little. Pages come first, as
                # the parent waits for their verdicts and not for the folding.
                chunk = ready[done:done + FOLD_CHUNK]
                done += len(chunk)
                if folder is None or not _fold(folder, chunk):
                    folder, ready, done = None, [], 0  # no state at the end
                continue
            body = _read_frame(read_fd, None)
            if body is None:
                break
            # Frames come only from the parent, through a pipe nobody else holds.
            tag, value = pickle.loads(body)  # noqa: S301
            if tag == "page":
                answer = []
                for seq, event_id, record in value:
                    verdict = _verdict(opener, deks, event_id, record)
                    answer.append(verdict)
                    if verdict is not None and folder is not None and verdict[0] == KIND_EVENT:
                        unfolded.append((seq, event_id, verdict))
                _write_frame(write_fd, pickle.dumps(("verdicts", answer), pickle.HIGHEST_PROTOCOL))
            elif tag == "fold" and folder is not None:
                through, extra = value
                if extra:
                    unfolded = sorted(unfolded + extra)
                split = bisect.bisect_right(unfolded, through, key=lambda u: u[0])
                ready = ready[done:] + unfolded[:split]
                done = 0
                unfolded = unfolded[split:]
            elif tag == "finish":
                if folder is not None and not _fold(folder, ready[done:]):
                    folder = None
                ready, done = [], 0
                state = folder.forked_state() if folder is not None else None
                _write_frame(write_fd, pickle.dumps(("state", state), pickle.HIGHEST_PROTOCOL))
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the parent goes on alone
        code = 1
    finally:
        os._exit(code)


def _readable(fd: int) -> bool:
    """True if a frame (or the end) is waiting on `fd`."""
    return bool(select.select([fd], [], [], 0)[0])


def _verdict(opener: PulledRecordOpener, deks: dict[str, Dek], event_id: str,
             record: bytes) -> Verdict:
    """What the parent's `_authenticate` would find, or None to leave it to the parent."""
    try:
        header, sealed = opener.header(event_id, record)
        if header.kind == KIND_KEY:
            unwrapped = deks[header.key_id] = opener.key(event_id, header, sealed)
            payload = unwrapped.key  # the parent installs the DEK without unwrapping it again
        else:
            dek = deks.get(header.key_id)
            if dek is None:
                return None
            payload = opener.event_payload(event_id, header, dek, sealed)
    except Exception:  # noqa: BLE001 - the parent reports it, at its position
        return None
    kind, aggregate_type, aggregate_id, version, key_id = header
    return (kind, aggregate_type, aggregate_id, version, key_id, payload)


def _fold(folder: ForkFolder, events: list[Extra]) -> bool:
    """Fold committed events in sequence order; False if any would not (the parent replays)."""
    opened = []
    try:
        for seq, event_id, (kind, aggregate_type, aggregate_id, version, key_id, payload) in events:
            if kind != KIND_EVENT:
                return False
            # Synced events are placed by their global sequence; the commit seq the
            # parent's store gave them is not known here and not used for them.
            stored = StoredEvent(0, seq, event_id, kind, aggregate_type, aggregate_id, version,
                                 key_id, b"")
            opened.append(OpenedEvent(stored, Envelope.from_bytes(payload)))
        folder.fold_in_fork(opened)
    except Exception:  # noqa: BLE001 - the parent catches up from the log instead
        return False
    return True


# -- frames -------------------------------------------------------------------------


def _write_frame(fd: int, body: bytes) -> None:
    # Head and body without joining them (a page is hundreds of kilobytes).
    for part in (_FRAME.pack(len(body)), body):
        data = memoryview(part)
        while data:
            written = os.write(fd, data)
            data = data[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None) -> bytes | None:
    try:
        head = _read_exact(fd, _FRAME.size, deadline)
        if head is None:
            return None
        return _read_exact(fd, _FRAME.unpack(head)[0], deadline)
    except OSError:
        return None


def _parse(body: bytes, expected: int) -> list[Verdict] | None:
    """The child's answer if it is well formed and has one verdict per record."""
    try:
        # Frames come only from the forked child, through a pipe nobody else holds.
        tag, verdicts = pickle.loads(body)  # noqa: S301
    except Exception:  # noqa: BLE001 - a garbled answer means "go on alone"
        return None
    if tag != "verdicts" or not isinstance(verdicts, list) or len(verdicts) != expected:
        return None
    for verdict in verdicts:
        # Spelled out rather than all(...) over the fields: one check per pulled record.
        if verdict is not None and not (
            type(verdict) is tuple and len(verdict) == 6
            and type(verdict[0]) is str and type(verdict[1]) is str
            and type(verdict[2]) is str and type(verdict[3]) is int
            and type(verdict[4]) is str and type(verdict[5]) is bytes
        ):
            return None
    return verdicts
