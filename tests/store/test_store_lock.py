"""INV-007: one writer per store; a second process is refused cleanly with the holder's pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from store_factories import event

from mo_local.store import EventStore, StoreBusy

# Prints the outcome of opening the store as one JSON line.
TRY_OPEN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mo_local.store import EventStore, StoreBusy
    try:
        store = EventStore.open(Path(sys.argv[1]))
    except StoreBusy as exc:
        print(json.dumps({"type": type(exc).__name__, "pid": exc.pid, "message": str(exc)}))
    else:
        print(json.dumps({"type": "opened", "events": store.count_events()}))
        store.close()
    """
)

# Opens the store, says so, and holds it until stdin closes.
HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mo_local.store import EventStore
    store = EventStore.open(Path(sys.argv[1]))
    print("holding", flush=True)
    sys.stdin.read()
    store.close()
    """
)


def try_open_in_subprocess(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", TRY_OPEN, str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_inv007_second_process_gets_store_busy_with_our_pid(store_path: Path) -> None:
    store = EventStore.open(store_path, create=True)
    try:
        store.append("g1", 0, [event("g1", 1)])

        result = try_open_in_subprocess(store_path)

        assert result["type"] == "StoreBusy"
        assert result["pid"] == os.getpid()
        assert result["message"] == f"store in use by pid {os.getpid()}"
        # The holder is unharmed and keeps working.
        store.append("g1", 1, [event("g1", 2)])
        assert [e.version for e in store.read_aggregate("g1")] == [1, 2]
        assert store.integrity_check() == ["ok"]
    finally:
        store.close()

    after = try_open_in_subprocess(store_path)
    assert after == {"type": "opened", "events": 2}


def test_inv007_we_are_refused_while_another_process_holds_the_store(store_path: Path) -> None:
    EventStore.open(store_path, create=True).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"

        with pytest.raises(StoreBusy) as info:
            EventStore.open(store_path)
        assert info.value.pid == holder.pid
        assert EventStore.lock_holder(store_path) == holder.pid

        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    assert EventStore.lock_holder(store_path) is None
    with EventStore.open(store_path) as store:
        assert store.count_events() == 0


def test_inv007_a_second_open_in_the_same_process_is_refused(store: EventStore) -> None:
    with pytest.raises(StoreBusy) as info:
        EventStore.open(store.path)
    assert info.value.pid == os.getpid()
    assert EventStore.lock_holder(store.path) == os.getpid()
    store.append("g1", 0, [event("g1", 1)])
    assert store.current_version("g1") == 1


def test_lock_is_released_on_close_and_failed_open(store_path: Path) -> None:
    EventStore.open(store_path, create=True).close()
    assert EventStore.lock_holder(store_path) is None
    assert store_path.with_suffix(".lock").read_text() == ""
    with EventStore.open(store_path) as store:
        assert EventStore.lock_holder(store_path) == os.getpid()
        assert store.lock_path.read_text().strip() == str(os.getpid())
    assert EventStore.lock_holder(store_path) is None


def test_lock_holder_of_a_path_without_lock_file(tmp_path: Path) -> None:
    assert EventStore.lock_holder(tmp_path / "mo.db") is None
