"""The sync engine page by page: checks within a page, grouped commits, pages and pushes in
flight while the previous one is applied — against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sync_fixtures import PASSPHRASE, Device, event_triples

from mo_local.client import Client
from mo_local.crypto.records import seal_key_record
from mo_local.store import StoreError
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.engine import SyncEngine
from mo_local.sync.errors import RemoteUnreachable, SyncCorrupt
from mo_local.sync.remote import RemoteState
from mo_local.sync.transport import (
    OutgoingRecord,
    PulledRecord,
    PullPage,
    PushResult,
    RecordTransport,
)

NO_SLEEP = RetryPolicy(attempts=2, sleep=lambda _s: None)


class Appending:
    """Serves the real server's pages with extra (authentic) records after the last one."""

    def __init__(self, inner: RecordTransport, extra: Sequence[PulledRecord]):
        self.inner = inner
        self.extra = tuple(extra)

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        raise AssertionError("no push expected")

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        page = self.inner.pull(store_id, since, limit, wait)
        if page.has_more:
            return page
        head = max([page.head] + [r.seq for r in self.extra])
        return PullPage(page.records + self.extra, head, False)


class Counting:
    """Counts pulls and pushes; pulls from the `fail_from`-th on, or the pushes listed, fail."""

    def __init__(self, inner: RecordTransport, fail_from: int | None = None,
                 failing_pushes: Sequence[int] = ()):
        self.inner = inner
        self.fail_from = fail_from
        self.failing_pushes = set(failing_pushes)
        self.pulls: list[int] = []
        self.pushes: list[tuple[int, list[str]]] = []

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        self.pulls.append(since)
        if self.fail_from is not None and len(self.pulls) >= self.fail_from:
            raise RemoteUnreachable("injected: the network went away")
        return self.inner.pull(store_id, since, limit, wait)

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        self.pushes.append((expected_head, [r.event_id for r in records]))
        if len(self.pushes) in self.failing_pushes:
            raise RemoteUnreachable("injected: the push did not get through")
        return self.inner.push(store_id, expected_head, records)


def stored(device: Device) -> dict[str, int | None]:
    """Event id → global sequence of every row of the device."""
    return {r.event_id: r.global_seq for r in device.client.store.read_commit_order()}


def test_an_event_id_twice_in_one_page_stops_at_the_second(
    make_device: Callable[..., Device],
) -> None:
    """The second copy is refused as a record already synced here; the page before it applies."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 2)
    d1.sync()
    d2 = make_device(join_from=d1)
    later = d1.append(goal, 2, "later")
    head = d1.sync().result.head
    first = d1.client.store.get_event(later[0].event_id)
    assert first is not None and first.global_seq is not None
    again = PulledRecord(head + 1, first.event_id, first.record)
    engine = d2.engine(Appending(d2.transport, [again]))
    with pytest.raises(SyncCorrupt) as info:
        engine.pull()
    assert f"already synced here at sequence {first.global_seq}" in str(info.value)
    assert f"sequence {head + 1}" in str(info.value)
    assert engine.state.cursor == head
    assert stored(d2) == stored(d1)


def test_a_version_taken_earlier_in_the_same_page_is_corruption(
    make_device: Callable[..., Device],
) -> None:
    """Two pulled events for one (aggregate, version) in one page: the second stops sync."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1)
    d1.sync()
    d2 = make_device(join_from=d1)
    d3 = make_device(join_from=d1)
    [winner] = d1.append(goal, 1, "d1")
    head = d1.sync().result.head
    [rival] = d3.append(goal, 1, "d3")  # the same version 2, never pushed
    engine = d2.engine(Appending(d2.transport, [PulledRecord(head + 1, rival.event_id,
                                                             rival.record)]))
    with pytest.raises(SyncCorrupt) as info:
        engine.pull()
    assert winner.event_id in str(info.value)
    assert "takes version 2" in str(info.value)
    assert engine.state.cursor == head
    assert d2.client.store.get_event(rival.event_id) is None
    assert stored(d2) == stored(d1)


def test_a_failed_fetch_keeps_the_pages_applied_before_it(
    make_device: Callable[..., Device],
) -> None:
    """Pages share a transaction; a fetch that fails for good commits what was applied first."""
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 1)
    d1.sync()
    d2 = make_device(join_from=d1)
    d1.append(str(uuid.uuid4()), 7)  # a key record and 7 events
    d1.sync()
    before = RemoteState(d2.client.store).cursor
    notified = len(d2.remote_events)
    # Pages of 3 hold the record at the cursor and 2 new ones; the third pull fails.
    transport = Counting(d2.transport, fail_from=3)
    engine = d2.engine(transport, page_size=3, retry=NO_SLEEP)
    with pytest.raises(RemoteUnreachable):
        engine.pull()
    assert engine.state.cursor == before + 4
    assert d2.client.store.count_events() == before + 4
    assert len(d2.remote_events) == notified + 1
    assert d2.engine().pull() == 4
    assert d2.events() == d1.events()


@pytest.mark.parametrize(("group_records", "commits"), [(4, 3), (10_000, 1)])
def test_pages_are_grouped_into_transactions_of_at_least_group_records(
    make_device: Callable[..., Device], tmp_path: Path, group_records: int, commits: int
) -> None:
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 9)
    d1.sync()
    with Client.create_from_header(tmp_path / "new", d1.client.vault_header,
                                   PASSPHRASE) as client:
        statements: list[str] = []
        client.store._db().set_trace_callback(statements.append)
        engine = SyncEngine(client.store, client.log, d1.transport, client.store_id,
                            lambda: None, page_size=2, group_records=group_records)
        assert engine.pull() == 9
        client.store._db().set_trace_callback(None)
        # 10 records in pages of 2 (then 1 new record per page beside the one at the
        # cursor): groups of 4, 4 and 2 records, or all 10 in one.
        assert statements.count("COMMIT") == commits
        assert event_triples(client) == d1.events()


def test_a_store_error_rolls_back_the_group_being_applied(
    make_device: Callable[..., Device],
) -> None:
    """A record that authenticates but cannot be stored: nothing of its group is kept."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1)
    d1.sync()
    d2 = make_device(join_from=d1)
    d1.append(str(uuid.uuid4()), 3)
    head = d1.sync().result.head
    before = stored(d2)
    cursor = RemoteState(d2.client.store).cursor
    # An authentic key record that re-registers the key id of d1's first aggregate.
    [key] = list(d1.client.store.key_records(goal))
    dek = d1.client.log.install_key_record(key)
    event_id = str(uuid.uuid4())
    record = seal_key_record(d1.client.vault, d1.client.store_id, event_id, "goal",
                             str(uuid.uuid4()), dek)
    engine = d2.engine(Appending(d2.transport, [PulledRecord(head + 1, event_id, record)]))
    with pytest.raises(StoreError):
        engine.pull()
    assert stored(d2) == before
    assert RemoteState(d2.client.store).cursor == cursor
    assert d2.engine().pull() == 3  # the real records apply once the server stops lying
    assert d2.events() == d1.events()


def test_pushes_go_out_back_to_back_in_commit_order(make_device: Callable[..., Device]) -> None:
    d1 = make_device()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    d1.append(a, 4)
    d1.append(b, 3)
    d1.append(a, 2)
    transport = Counting(d1.transport)
    assert d1.engine(transport, push_records=3).push() == 9
    commit_order = [r.event_id for r in d1.client.store.read_commit_order()]
    assert [e for _, batch in transport.pushes for e in batch] == commit_order
    # Each batch expects the head the previous acknowledgement reported.
    assert [head for head, _ in transport.pushes] == [0, 3, 6, 9]
    assert d1.client.store.count_pending() == 0
    assert RemoteState(d1.client.store).cursor == 11


def test_a_failed_push_sent_ahead_is_retried_from_the_database(
    make_device: Callable[..., Device],
) -> None:
    """The batches before it stay recorded; the retry re-reads what is still pending."""
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 10)  # 11 records
    sleeps: list[float] = []
    transport = Counting(d1.transport, failing_pushes=[3, 5])
    engine = d1.engine(transport, push_records=3,
                       retry=RetryPolicy(attempts=2, sleep=sleeps.append))
    assert engine.push() == 10
    sent = [batch for _, batch in transport.pushes]
    assert [len(b) for b in sent] == [3, 3, 3, 3, 2, 2]
    assert sent[2] == sent[3] and sent[4] == sent[5]
    assert len(sleeps) == 2  # each failure came after progress: a fresh count, one pause
    assert d1.client.store.count_pending() == 0
    assert sorted(s for s in stored(d1).values() if s is not None) == list(range(1, 12))


def test_a_replayed_order_is_pushed_in_batches_and_keeps_its_sequences(
    make_device: Callable[..., Device],
) -> None:
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 4)
    d1.append(str(uuid.uuid4()), 3)
    d1.sync()
    before = stored(d1)
    d1.engine().reset()
    transport = Counting(d1.transport)
    d1.engine(transport, push_records=2).push()
    assert stored(d1) == before
    replayed = [e for _, batch in transport.pushes for e in batch]
    assert replayed == sorted(before, key=lambda e: before[e] or 0)
