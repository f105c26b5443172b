"""The sync engine against a real server: rebase, retries, lost acks, a server that went back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sync_fixtures import PASSPHRASE, PASSWORD, Device, RunningServer

from mo_local.client import Client
from mo_local.sync import session
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.errors import RemoteUnreachable, ServerBehind, SyncCorrupt
from mo_local.sync.remote import RemoteState
from mo_local.sync.transport import (
    OutgoingRecord,
    PulledRecord,
    PullPage,
    PushResult,
    RecordTransport,
    Transport,
)


class Faulty:
    """Wraps a real transport; a hook runs before or after each call and may fail it."""

    def __init__(self, inner: RecordTransport,
                 before_push: Callable[[int], None] | None = None,
                 after_push: Callable[[int, PushResult], None] | None = None):
        self.inner = inner
        self.before_push = before_push
        self.after_push = after_push
        self.pushes: list[list[OutgoingRecord]] = []
        self.results: list[PushResult] = []

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        self.pushes.append(list(records))
        attempt = len(self.pushes)
        if self.before_push is not None:
            self.before_push(attempt)
        result = self.inner.push(store_id, expected_head, records)
        self.results.append(result)
        if self.after_push is not None:
            self.after_push(attempt, result)
        return result

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        return self.inner.pull(store_id, since, limit, wait)


def pull_all(device: Device) -> list[tuple[int, str, bytes]]:
    """Everything the server holds for the device's store, through the API."""
    page = device.transport.pull(device.client.store_id, 0, 1000)
    assert not page.has_more
    return [(r.seq, r.event_id, r.record) for r in page.records]


def test_inv010_inv001_rebase_shifts_pending_and_converges(
    make_device: Callable[..., Device]
) -> None:
    """INV-010: rebased events keep id and plaintext; INV-001: synced events never change."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1, "base")
    d1.sync()
    d2 = make_device(join_from=d1)

    # Both devices edit the same aggregate offline.
    d1.append(goal, 2, "one")
    mine = d2.append(goal, 2, "two")
    plaintext_before = {o.stored.event_id: o.envelope for o in d2.client.log.read_aggregate(goal)}
    d1.sync()
    synced_on_d1 = {r.event_id: r.record for r in d1.client.store.read_commit_order()}

    result = d2.sync().result
    assert (result.pushed, result.pulled) == (2, 2)
    for before in mine:
        after = d2.client.store.get_event(before.event_id)
        assert after is not None
        assert after.version == before.version + 2  # shifted above the two remote events
        assert after.record != before.record  # re-sealed for the new version
        assert after.synced
    opened = {o.stored.event_id: o.envelope for o in d2.client.log.read_aggregate(goal)}
    for event_id in (e.event_id for e in mine):
        assert opened[event_id] == plaintext_before[event_id]
    assert [o.stored.version for o in d2.client.log.read_aggregate(goal)] == [1, 2, 3, 4, 5]

    d1.sync()
    assert d1.events() == d2.events()
    for event_id, record in synced_on_d1.items():
        row = d1.client.store.get_event(event_id)
        assert row is not None and row.record == record
        copy = d2.client.store.get_event(event_id)
        assert copy is not None and copy.record == record
    assert d2.remote_events, "the client was told that remote events arrived"


def test_inv018_retry_sends_what_the_database_holds_now(
    make_device: Callable[..., Device]
) -> None:
    """INV-018: a push retried after a failure re-reads the pending rows from the database."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    [event] = d1.append(goal, 1)
    replacement: dict[str, bytes] = {}

    def fail_first_and_rewrite(attempt: int) -> None:
        if attempt == 1:
            row = d1.client.store.get_event(event.event_id)
            assert row is not None
            resealed = d1.client.log.reseal_for_version(row, row.version)
            d1.client.store.rewrite_pending(row.event_id, row.version, resealed)
            replacement[row.event_id] = resealed
            raise RemoteUnreachable("injected network failure")

    sleeps: list[float] = []
    faulty = Faulty(d1.transport, before_push=fail_first_and_rewrite)
    engine = d1.engine(faulty, retry=RetryPolicy(attempts=3, sleep=sleeps.append))
    assert engine.push() == 1
    assert len(faulty.pushes) == 2
    first, retry = ({r.event_id: r.record for r in p} for p in faulty.pushes)
    assert first[event.event_id] == event.record
    assert retry[event.event_id] == replacement[event.event_id] != event.record
    stored = {e: r for _, e, r in pull_all(d1)}
    assert stored[event.event_id] == replacement[event.event_id]
    assert len(sleeps) == 1


def test_inv008_lost_acknowledgement_is_harmless(make_device: Callable[..., Device]) -> None:
    """INV-008: the server stored a push whose answer was lost; the retry gets the same seqs."""
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 3)

    def drop_first_answer(attempt: int, _result: PushResult) -> None:
        if attempt == 1:
            raise RemoteUnreachable("injected: response lost")

    faulty = Faulty(d1.transport, after_push=drop_first_answer)
    engine = d1.engine(faulty)
    assert engine.push() == 3
    assert len(faulty.results) == 2
    assert faulty.results[0].assigned == faulty.results[1].assigned
    stored = pull_all(d1)
    assert [s for s, _, _ in stored] == [1, 2, 3, 4]
    assert len({e for _, e, _ in stored}) == 4
    for seq, event_id, _ in stored:
        row = d1.client.store.get_event(event_id)
        assert row is not None and row.global_seq == seq


def test_inv008_lost_ack_then_pull_marks_own_records(make_device: Callable[..., Device]) -> None:
    """A lost ack across syncs: our own records come back in a pull and are marked synced."""
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 2)

    def always_lost(_attempt: int, _result: PushResult) -> None:
        raise RemoteUnreachable("injected: response lost")

    engine = d1.engine(Faulty(d1.transport, after_push=always_lost),
                       retry=RetryPolicy(attempts=2, sleep=lambda _s: None))
    with pytest.raises(RemoteUnreachable):
        engine.push()
    assert d1.client.store.count_pending() == 3
    result = d1.sync().result
    assert result.pushed == 0
    assert d1.client.store.count_pending() == 0
    assert len(pull_all(d1)) == 3


def test_network_errors_back_off_and_give_up(make_device: Callable[..., Device]) -> None:
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 1)

    def down(_attempt: int) -> None:
        raise RemoteUnreachable("injected: server down")

    sleeps: list[float] = []
    faulty = Faulty(d1.transport, before_push=down)
    policy = RetryPolicy(attempts=4, base_seconds=1.0, cap_seconds=2.5, sleep=sleeps.append)
    with pytest.raises(RemoteUnreachable):
        d1.engine(faulty, retry=policy).push()
    assert len(faulty.pushes) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= c for s, c in zip(sleeps, [1.0, 2.0, 2.5], strict=True))
    assert d1.client.store.count_pending() == 2


def test_unreachable_server_is_a_typed_error(tmp_path: Path) -> None:
    with Transport("http://127.0.0.1:9", token="secret-token-value") as transport, \
            pytest.raises(RemoteUnreachable) as info:
        transport.pull(str(uuid.uuid4()), 0, 10)
    assert "secret-token-value" not in str(info.value)
    assert info.value.exit_code == 8


def test_server_ahead_pulls_rebases_and_retries(make_device: Callable[..., Device]) -> None:
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1)
    d1.sync()
    d2 = make_device(join_from=d1)
    d1.append(goal, 1, "d1")
    d1.sync()
    d2.append(goal, 1, "d2")
    pushed = d2.engine().push()  # no pull first: the server answers server_ahead
    assert pushed == 1
    assert [v for _, v, _ in d2.events()] == [1, 2, 3]
    d1.sync()
    assert d1.events() == d2.events()


def test_push_in_batches_keeps_commit_order(make_device: Callable[..., Device]) -> None:
    d1 = make_device()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    d1.append(a, 4)
    d1.append(b, 3)
    d1.append(a, 2)
    faulty = Faulty(d1.transport)
    assert d1.engine(faulty, push_records=3).push() == 9
    assert [len(p) for p in faulty.pushes] == [3, 3, 3, 2]
    commit_order = [r.event_id for r in d1.client.store.read_commit_order()]
    assert [r.event_id for p in faulty.pushes for r in p] == commit_order
    assert [e for _, e, _ in pull_all(d1)] == commit_order


def test_pull_in_pages_and_tell_the_client_once(make_device: Callable[..., Device]) -> None:
    d1 = make_device()
    d1.append(str(uuid.uuid4()), 7)
    d1.sync()
    d2 = make_device(join_from=d1)
    d1.append(str(uuid.uuid4()), 5)
    d1.sync()
    engine = d2.engine(page_size=2)
    before = len(d2.remote_events)
    assert engine.pull() == 5
    assert len(d2.remote_events) == before + 1
    assert engine.pull() == 0
    assert len(d2.remote_events) == before + 1
    assert d2.events() == d1.events()


def test_server_behind_then_reset_repushes_and_devices_converge(
    make_device: Callable[..., Device], server: RunningServer, tmp_path: Path
) -> None:
    """A server restored from an older backup is refused, never silently accepted."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 2)
    d1.sync()
    d2 = make_device(join_from=d1)
    d3 = make_device(join_from=d1)
    backup = tmp_path / "server-backup.db"
    server.snapshot(backup)
    # After the backup: d1 commits Y before it pulls d2's X, so d1's commit order
    # (Y, X) differs from the global order (X, Y).
    d1.append(goal, 1, "Y")
    d2.append(str(uuid.uuid4()), 1, "X")
    d2.sync()
    d1.sync()
    d2.sync()
    d3.sync()
    assert d1.events() == d2.events() == d3.events()
    head = d1.sync().result.head
    seqs_before = {r.event_id: r.global_seq for r in d2.client.store.read_commit_order()}

    server.restore(backup)
    with pytest.raises(ServerBehind) as info:
        d3.sync()
    assert "server_behind" in str(info.value)
    assert "mo sync reset" in str(info.value)
    assert info.value.head < head
    with pytest.raises(ServerBehind):
        d1.sync()

    pending = d1.engine().reset()
    assert pending == d1.client.store.count_events()
    result = d1.sync().result
    assert result.head == head
    assert d1.client.store.count_pending() == 0
    # Pushed again in the former global order, so every sequence is the same as before.
    seqs1 = {r.event_id: r.global_seq for r in d1.client.store.read_commit_order()}
    assert seqs1 == seqs_before

    # d2 never noticed the restore: its mappings are still right, and it just goes on.
    d2.append(goal, 1, "after")
    d2.sync()
    d3.engine().reset()
    d3.sync()
    d1.sync()
    assert d1.events() == d2.events() == d3.events()
    assert all(d.client.store.count_pending() == 0 for d in (d1, d2, d3))
    maps = [{r.event_id: r.global_seq for r in d.client.store.read_commit_order()}
            for d in (d1, d2, d3)]
    assert maps[0] == maps[1] == maps[2]


def test_history_replaced_at_the_cursor_is_refused(
    make_device: Callable[..., Device], server: RunningServer, tmp_path: Path
) -> None:
    """A restored server that others filled up again to our head is still noticed."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1)
    d1.sync()
    d2 = make_device(join_from=d1)
    backup = tmp_path / "server-backup.db"
    server.snapshot(backup)
    d1.append(str(uuid.uuid4()), 2, "lost")
    head = d1.sync().result.head
    server.restore(backup)
    d2.append(str(uuid.uuid4()), 3, "other")  # a key record and 3 events: beyond d1's head
    d2.sync()
    assert d2.sync().result.head >= head
    with pytest.raises(ServerBehind) as info:
        d1.sync()
    assert info.value.changed_at == head
    assert "server_behind" in str(info.value)
    d1.engine().reset()
    d1.sync()
    d2.sync()
    assert d1.events() == d2.events()


def test_split_history_after_restore_converges_after_resets(
    make_device: Callable[..., Device], server: RunningServer, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a restore, another device takes the version of a lost event; resets converge.

    The lost event is rebased on the device that re-pushes it; a device that had it
    synced gets it back re-sealed, keeps its id and plaintext (INV-010) and adopts
    the server's bytes (INV-004).
    """
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1)
    d1.sync()
    d2 = make_device(join_from=d1)
    d4 = make_device(join_from=d1)
    backup = tmp_path / "server-backup.db"
    server.snapshot(backup)
    [lost] = d1.append(goal, 1, "lost")
    d1.sync()
    d2.sync()
    server.restore(backup)
    [rival] = d4.append(goal, 1, "rival")  # d4 never saw the lost event: version 2 again
    d4.sync()

    caplog.set_level(logging.INFO, logger="mo_local.sync")
    for device in (d1, d2):
        with pytest.raises(ServerBehind) as info:
            device.sync()
        assert info.value.changed_at is not None
        device.engine().reset()
        device.sync()
    assert any("server's copy" in r.getMessage() for r in caplog.records)
    d4.sync()
    d1.sync()

    assert d1.events() == d2.events() == d4.events()
    by_id = {e: v for _, v, e in d1.events()}
    assert (by_id[rival.event_id], by_id[lost.event_id]) == (2, 3)
    for device in (d1, d2, d4):
        assert device.client.store.count_pending() == 0
        opened = {o.stored.event_id: o.envelope
                  for o in device.client.log.read_aggregate(goal)}
        assert opened[lost.event_id].data == {"tag": "lost0"}
    records = [{r.event_id: r.record for r in d.client.store.read_commit_order()}
               for d in (d1, d2, d4)]
    assert records[0] == records[1] == records[2]


@pytest.mark.parametrize("where", ["header", "payload"])
def test_tampered_record_stops_the_pull(
    make_device: Callable[..., Device], server: RunningServer, tmp_path: Path, where: str
) -> None:
    """A record that fails authentication stops sync; nothing at or after it is applied."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    events = d1.append(goal, 4)
    d1.sync()
    row = d1.client.store.get_event(events[2].event_id)
    assert row is not None and row.global_seq is not None
    record = bytearray(row.record)
    # Canonical CBOR {"h": …, "p": …, "v": 1}: a byte near the start sits in the header
    # ciphertext, one just before the trailing `"v": 1` in the payload's tag.
    index = 12 if where == "header" else len(record) - 5
    record[index] ^= 0x01
    server.execute("UPDATE records SET record = ? WHERE seq = ?", (bytes(record), row.global_seq))

    home = tmp_path / "joiner"
    with Transport(server.url) as transport, pytest.raises(SyncCorrupt) as info:
        session.join(transport, d1.email, PASSWORD,
                     lambda header: Client.create_from_header(home, header, PASSPHRASE))
    assert f"sequence {row.global_seq}" in str(info.value)
    assert "failed authentication" in str(info.value)

    with Client.open(home) as joiner:
        joiner.unlock(PASSPHRASE)
        applied = sorted(r.global_seq or 0 for r in joiner.store.read_commit_order())
        assert applied == list(range(1, row.global_seq))
        assert RemoteState(joiner.store).cursor == row.global_seq - 1
        assert joiner.store.get_event(row.event_id) is None
        with session.open_transport(joiner) as transport, pytest.raises(SyncCorrupt):
            session.sync_once(joiner, transport)  # stays stopped at the bad record
        assert RemoteState(joiner.store).cursor == row.global_seq - 1


class Forging:
    """Serves the real server's page with forged (but authentic) records appended."""

    def __init__(self, inner: RecordTransport, forged: Sequence[PulledRecord]):
        self.inner = inner
        self.forged = tuple(forged)

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        raise AssertionError("no push expected")

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        page = self.inner.pull(store_id, since, limit, wait)
        head = max([page.head] + [r.seq for r in self.forged])
        return PullPage(page.records + self.forged, head, False)


def test_collision_with_a_synced_event_is_corruption(make_device: Callable[..., Device]) -> None:
    """A pulled event taking the version of a synced event stops sync and changes nothing."""
    d1 = make_device()
    goal = str(uuid.uuid4())
    d1.append(goal, 1)
    d1.sync()
    d3 = make_device(join_from=d1)
    [synced] = d1.append(goal, 1, "d1")
    d1.sync()
    [rival] = d3.append(goal, 1, "d3")  # same version 2, never pushed
    head = d1.sync().result.head
    before = d1.events()
    engine = d1.engine(Forging(d1.transport,
                               [PulledRecord(head + 1, rival.event_id, rival.record)]))
    with pytest.raises(SyncCorrupt) as info:
        engine.pull()
    assert synced.event_id in str(info.value)
    assert d1.events() == before
    assert engine.state.cursor == head


@pytest.mark.parametrize("variant", ["same_bytes_other_seq", "other_bytes"])
def test_pulled_record_must_match_our_synced_copy(
    make_device: Callable[..., Device], variant: str
) -> None:
    """Our own synced event coming back at another sequence or with other bytes is refused."""
    d1 = make_device()
    [event] = d1.append(str(uuid.uuid4()), 1)
    head = d1.sync().result.head
    row = d1.client.store.get_event(event.event_id)
    assert row is not None
    record = row.record
    if variant == "other_bytes":
        record = d1.client.log.reseal_for_version(row, row.version)  # authentic, other nonce
    engine = d1.engine(Forging(d1.transport, [PulledRecord(head + 1, event.event_id, record)]))
    with pytest.raises(SyncCorrupt) as info:
        engine.pull()
    expected = "already synced here" if variant == "same_bytes_other_seq" else "mo sync reset"
    assert expected in str(info.value)
    assert engine.state.cursor == head
    after = d1.client.store.get_event(event.event_id)
    assert after is not None and after.record == row.record and after.global_seq == row.global_seq
