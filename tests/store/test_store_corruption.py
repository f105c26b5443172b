"""Damaged store files surface as StoreCorrupt (naming the file, suggesting `mo doctor`)."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from store_factories import MARKER, event, events, key_record

from mo_local.store import EventStore, StoreCorrupt
from mo_local.store.schema import SCHEMA_VERSION

PAGE = 4096
AGGREGATES = 12


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store of ~100 pages: key records, events, sync mappings and side tables."""
    path = tmp_path_factory.mktemp("pristine") / "mo.db"
    with EventStore.open(path, create=True) as store:
        store.set_meta("store_id", b"store-1")
        for n in range(AGGREGATES):
            agg = f"g{n}"
            store.append(agg, 0, [key_record(agg), *events(agg, 1, 30, size=300)])
        for seq, e in enumerate(list(store.read_commit_order())[:150], start=1):
            store.mark_synced(e.event_id, seq)
        store.save_derived("goals", "all", store.effective_head(), b"cache" * 100)
    assert path.stat().st_size > 60 * PAGE
    assert not Path(str(path) + "-wal").exists()
    return path


def copy_of(pristine: Path, tmp_path: Path) -> Path:
    path = tmp_path / "mo.db"
    shutil.copyfile(pristine, path)
    return path


def exercise(path: Path) -> str:
    """Open and read everything; 'clean', 'integrity' (problems reported) or raises."""
    with EventStore.open(path) as store:
        list(store.read_commit_order(batch_size=50))
        list(store.read_effective_order(batch_size=50))
        list(store.pending(batch_size=50))
        list(store.key_records())
        for n in range(AGGREGATES):
            list(store.read_aggregate(f"g{n}"))
            store.current_version(f"g{n}")
        store.get_meta("store_id")
        store.load_derived("goals", "all")
        store.count_events()
        store.count_pending()
        problems = store.integrity_check()
        store.append("fresh", 0, [event("fresh", 1)])
        return "clean" if problems == ["ok"] else "integrity"


def assert_corrupt_message(exc: StoreCorrupt, path: Path) -> None:
    message = str(exc)
    assert str(path) in message and "mo doctor" in message
    assert exc.path == path
    assert MARKER.decode() not in message and "store-1" not in message
    # The sqlite3 error is not chained: its text may quote what was read.
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_a_non_sqlite_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "mo.db"
    path.write_bytes(b"these are not the pages you are looking for\n" * 200)
    with pytest.raises(StoreCorrupt) as info:
        EventStore.open(path)
    assert_corrupt_message(info.value, path)
    assert "not an SQLite database" in str(info.value)
    assert EventStore.lock_holder(path) is None


def test_a_truncated_header_is_corrupt(pristine: Path, tmp_path: Path) -> None:
    path = copy_of(pristine, tmp_path)
    with path.open("r+b") as f:
        f.truncate(50)
    with pytest.raises(StoreCorrupt) as info:
        EventStore.open(path)
    assert_corrupt_message(info.value, path)


@pytest.mark.parametrize("keep", [0.75, 0.5, 0.1])
def test_a_truncated_database_is_corrupt(pristine: Path, tmp_path: Path, keep: float) -> None:
    path = copy_of(pristine, tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(int(size * keep) // PAGE * PAGE + 100)
    with pytest.raises(StoreCorrupt) as info:
        exercise(path)
    assert_corrupt_message(info.value, path)
    assert EventStore.lock_holder(path) is None


def test_a_garbled_schema_page_is_corrupt_at_open(pristine: Path, tmp_path: Path) -> None:
    path = copy_of(pristine, tmp_path)
    with path.open("r+b") as f:
        f.seek(100)
        f.write(random.Random(1).randbytes(PAGE - 100))
    with pytest.raises(StoreCorrupt) as info:
        EventStore.open(path)
    assert_corrupt_message(info.value, path)


def pages_of(path: Path, table: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,)).fetchall()
    conn.close()
    return sorted(int(r[0]) for r in rows)


def garble(path: Path, page: int, rng: random.Random) -> None:
    with path.open("r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(rng.randbytes(PAGE))


def test_a_garbled_event_page_is_detected_on_read(pristine: Path, tmp_path: Path) -> None:
    """Opening only probes meta; damage in the log shows on read and still maps to StoreCorrupt."""
    path = copy_of(pristine, tmp_path)
    try:
        leaves = pages_of(path, "events")
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")
    garble(path, leaves[len(leaves) // 2], random.Random(2))
    with EventStore.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        with pytest.raises(StoreCorrupt) as info:
            list(store.read_commit_order(batch_size=10))
    assert_corrupt_message(info.value, path)


@pytest.mark.parametrize("seed", range(12))
def test_garbled_pages_in_the_middle_never_escape_as_other_errors(
    pristine: Path, tmp_path: Path, seed: int
) -> None:
    path = copy_of(pristine, tmp_path)
    pages = path.stat().st_size // PAGE
    rng = random.Random(seed)
    for _ in range(rng.randint(1, 3)):
        garble(path, rng.randint(3, pages - 2), rng)
    try:
        outcome = exercise(path)
    except StoreCorrupt as exc:
        assert_corrupt_message(exc, path)
        outcome = "corrupt"
    # Whole garbage pages are always noticed: by a read, or by the integrity check.
    assert outcome in ("corrupt", "integrity")


@pytest.mark.parametrize("seed", range(40))
def test_small_random_damage_is_clean_or_store_corrupt(
    pristine: Path, tmp_path: Path, seed: int
) -> None:
    """Bytes flipped anywhere: undetectable (inside a record) or StoreCorrupt, nothing else."""
    path = copy_of(pristine, tmp_path)
    size = path.stat().st_size
    rng = random.Random(1000 + seed)
    with path.open("r+b") as f:
        for _ in range(rng.randint(1, 4)):
            f.seek(rng.randint(0, size - 16))
            f.write(rng.randbytes(rng.choice([1, 2, 4, 16])))
    try:
        exercise(path)
    except StoreCorrupt as exc:
        assert_corrupt_message(exc, path)
    except Exception as exc:  # noqa: BLE001 - any other type is the failure under test
        pytest.fail(f"{type(exc).__name__} escaped instead of StoreCorrupt")
