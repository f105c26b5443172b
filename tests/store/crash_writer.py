"""Child process of the SIGKILL test: appends whole batches to a store until it is killed.

Batch n is one transaction: a key record plus BATCH events of aggregate
`batch-n`, one event of the aggregate `shared` at version n, and the sync
mapping of that shared event. It prints `begin n` before the transaction and
`batch n` after its commit.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from mo_local.store import EventStore, NewEvent

BATCH = 20


def row(aggregate_id: str, version: int, event_id: str, rng: random.Random) -> NewEvent:
    """One row with a random-sized record, so pages and the WAL churn."""
    return NewEvent(
        event_id=event_id,
        kind="key" if version == 0 else "event",
        aggregate_type="batch",
        aggregate_id=aggregate_id,
        version=version,
        key_id=f"key-{event_id}" if version == 0 else f"key-{aggregate_id}-0",
        record=rng.randbytes(rng.randint(40, 1500)),
    )


def main() -> None:
    """Write batches forever (the parent kills us)."""
    path, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    with EventStore.open(path, create=True) as store:
        n = store.current_version("shared")
        print(f"ready {n}", flush=True)
        while True:
            n += 1
            aggregate = f"batch-{n}"
            rows = [row(aggregate, v, f"{aggregate}-{v}", rng) for v in range(BATCH + 1)]
            print(f"begin {n}", flush=True)
            with store.transaction():
                store.append(aggregate, 0, rows)
                store.append("shared", n - 1, [row("shared", n, f"shared-{n}", rng)])
                store.mark_synced(f"shared-{n}", n)
            print(f"batch {n}", flush=True)


if __name__ == "__main__":
    main()
