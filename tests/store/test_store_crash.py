"""A writer killed with SIGKILL at random moments never leaves a partial batch or a damaged file."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from mo_local.store import EventStore

WRITER = Path(__file__).with_name("crash_writer.py")
BATCH = 20
ITERATIONS = 25


class LineReader:
    """Reads lines from a child's stdout, giving up at a deadline instead of hanging."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buffer = b""

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the writer printed nothing in time")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 4096)
                if not chunk:
                    raise EOFError("the writer exited")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


def check_whole(store: EventStore, committed: int) -> int:
    """Every batch is all-or-nothing; returns the number of whole batches."""
    assert store.integrity_check() == ["ok"]
    shared = store.current_version("shared")
    assert shared >= committed, "a batch reported as committed was lost"
    assert [e.version for e in store.read_aggregate("shared")] == list(range(1, shared + 1))
    for n in range(1, shared + 2):
        versions = [e.version for e in store.read_aggregate(f"batch-{n}")]
        keys = list(store.key_records(f"batch-{n}"))
        if n <= shared:
            assert versions == list(range(1, BATCH + 1)), n
            assert len(keys) == 1
        else:
            assert versions == [] and keys == [], "a partial batch survived the kill"
    assert store.count_events() == shared * (BATCH + 2)
    # The pending bookkeeping rolled back together with the rows.
    assert store.count_pending() == shared * (BATCH + 1)
    assert sum(1 for _ in store.pending()) == shared * (BATCH + 1)
    return shared


def test_sigkill_mid_write_leaves_only_whole_batches(tmp_path: Path) -> None:
    path = tmp_path / "mo.db"
    rng = random.Random(20240611)
    committed = 0
    for iteration in range(ITERATIONS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(iteration)],
            stdout=subprocess.PIPE,
        )
        try:
            lines = LineReader(proc)
            assert lines.readline(timeout=60) == f"ready {committed}"
            target = committed + rng.randint(1, 4)
            while True:
                word, number = lines.readline(timeout=60).split()
                if word == "batch":
                    committed = int(number)
                elif committed >= target:
                    break   # the writer has begun its next batch
            # A batch takes about a millisecond: kill somewhere inside (or just after) it.
            time.sleep(rng.uniform(0, 0.0015))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=60) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

        with EventStore.open(path) as store:
            committed = check_whole(store, committed)

    assert committed >= ITERATIONS
