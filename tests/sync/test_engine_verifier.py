"""Large pulls authenticated on a second core (sync/verifier.py) and folded while applied.

The server here is a list in this process — no server thread — because the
verifier forks only a single-threaded process. Every pull is compared with the
same pull done without the verifier: the stores, the cursor and the errors must
be the same, whatever the child does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import cbor2
import pytest
from sync_fixtures import FAST_KDF, PASSPHRASE, append_events

from mo_local.client import Client
from mo_local.derived.projector import Projector
from mo_local.sync import verifier as verifier_module
from mo_local.sync.engine import SyncEngine
from mo_local.sync.errors import SyncCorrupt
from mo_local.sync.remote import RemoteConfig, RemoteState
from mo_local.sync.transport import OutgoingRecord, PulledRecord, PullPage, PushResult

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="the verifier forks only on Linux with two cores",
)


class ListServer:
    """The sync protocol over a list (one store), in this thread."""

    def __init__(self) -> None:
        self.records: list[PulledRecord] = []
        self.seqs: dict[str, int] = {}

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        for r in records:
            if r.event_id not in self.seqs:
                self.records.append(PulledRecord(len(self.records) + 1, r.event_id, r.record))
                self.seqs[r.event_id] = len(self.records)
        return PushResult(len(self.records), {r.event_id: self.seqs[r.event_id] for r in records})

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        page = tuple(self.records[since:since + limit])
        return PullPage(page, len(self.records), since + limit < len(self.records))

    def tamper(self, seq: int, index: int) -> None:
        """Flip one bit of the record at `seq`."""
        old = self.records[seq - 1]
        record = bytearray(old.record)
        record[index] ^= 0x01
        self.records[seq - 1] = PulledRecord(old.seq, old.event_id, bytes(record))


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[Client, ListServer]]:
    """A device with 40 aggregates × 6 events (280 records) pushed to a list server."""
    client, _ = Client.create(tmp_path / "source", PASSPHRASE, FAST_KDF)
    for i in range(40):
        append_events(client, f"00000000-0000-4000-8000-{i:012x}", 6, f"a{i}-")
    server = ListServer()
    RemoteState(client.store).connect(RemoteConfig("http://list", "acct", client.store_id))
    SyncEngine(client.store, client.log, server, client.store_id, lambda: None).push()
    assert len(server.records) == 280
    yield client, server
    client.close()


def joiner(source: Client, home: Path) -> Client:
    client = Client.create_from_header(home, source.vault_header, PASSPHRASE)
    RemoteState(client.store).connect(RemoteConfig("http://list", "acct", client.store_id))
    return client


def engine(client: Client, server: ListServer, *, parallel: bool) -> SyncEngine:
    return SyncEngine(client.store, client.log, server, client.store_id, lambda: None,
                      page_size=50, verify_in_parallel=parallel)


def following(client: Client, server: ListServer, **options: object) -> SyncEngine:
    """An engine that folds what it pulls into `client`'s read model (pages of 50)."""
    follower = client.pull_follower()
    assert follower is not None
    return SyncEngine(client.store, client.log, server, client.store_id, client.refresh,  # type: ignore[arg-type]
                      page_size=50, follower=follower, **options)


def rows(client: Client) -> list[tuple[object, ...]]:
    return [tuple(r) for r in client.store.read_commit_order()]


INNER = "MO_VERIFIER_TEST_INNER"


def ran_in_a_fresh_process(request: pytest.FixtureRequest) -> bool:
    """True if this test was run (and passed) in a fresh interpreter instead of here.

    The verifier forks only a single-threaded process. When an earlier test in
    this session left a thread behind (a server, a portal), this test runs alone
    in a new pytest process, where the fork happens; its failure fails this test.
    """
    if threading.active_count() == 1 or os.environ.get(INNER):
        return False
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         request.node.nodeid],
        cwd=request.config.rootpath, env={**os.environ, INNER: "1"},
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    return True


def test_a_verified_pull_stores_exactly_what_a_plain_pull_stores(
    source: tuple[Client, ListServer], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    client, server = source
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        verified = engine(a, server, parallel=True)
        assert verified.pull() == 240
        assert engine(b, server, parallel=False).pull() == 240
        assert rows(a) == rows(b)
        assert RemoteState(a.store).cursor == RemoteState(b.store).cursor == 280
        # Every record, key records included (their DEKs come unwrapped from the child);
        # the first page is fetched before the verifier starts, and gets submitted too.
        assert verified.verified_elsewhere == 280
        a.rebuild()
        assert a.session.projector.model.applied == 240


@pytest.mark.parametrize("where", ["header", "payload"])
def test_a_tampered_record_stops_at_its_position_like_without_the_verifier(
    source: tuple[Client, ListServer], tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    client, server = source
    seq = 173  # in the fourth page of 50
    server.tamper(seq, 12 if where == "header" else len(server.records[seq - 1].record) - 5)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        errors = []
        for device, parallel in ((a, True), (b, False)):
            with pytest.raises(SyncCorrupt) as info:
                engine(device, server, parallel=parallel).pull()
            errors.append((info.value.seq, info.value.reason))
        assert errors[0] == errors[1] == (seq, "failed authentication")
        assert rows(a) == rows(b)
        assert RemoteState(a.store).cursor == seq - 1


def test_a_child_that_dies_leaves_the_pull_to_this_process(
    source: tuple[Client, ListServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    real_receive = verifier_module.PageVerifier.receive
    calls = []

    def dying(self: verifier_module.PageVerifier, expected: int) -> object:
        calls.append(expected)
        if len(calls) == 3:
            os.kill(self._pid, signal.SIGKILL)
        return real_receive(self, expected)

    monkeypatch.setattr(verifier_module.PageVerifier, "receive", dying)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        verified = engine(a, server, parallel=True)
        assert verified.pull() == 240
        engine(b, server, parallel=False).pull()
        assert rows(a) == rows(b)
        # The third answer may be in the pipe already; the next one cannot come, and
        # then nothing more is asked of the child (six pages in all).
        assert 3 <= len(calls) <= 4
        assert 0 < verified.verified_elsewhere < 280


def test_a_garbled_answer_is_not_used(
    source: tuple[Client, ListServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    # Every verdict claims another aggregate: if the parent used them, rows would differ.
    real_verdict = verifier_module._verdict

    def lying(*args: object) -> object:
        verdict = real_verdict(*args)  # type: ignore[arg-type]
        return None if verdict is None else (*verdict[:5], "not bytes")

    monkeypatch.setattr(verifier_module, "_verdict", lying)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        verified = engine(a, server, parallel=True)
        verified.pull()
        engine(b, server, parallel=False).pull()
        assert rows(a) == rows(b)
        assert verified.verified_elsewhere == 0


def opened_by_the_engine(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sequences of the records the engine authenticates itself, as it does so."""
    seqs: list[int] = []
    real_authenticate = SyncEngine._authenticate

    def counting(self: SyncEngine, pulled: PulledRecord) -> object:
        seqs.append(pulled.seq)
        return real_authenticate(self, pulled)

    monkeypatch.setattr(SyncEngine, "_authenticate", counting)
    return seqs


def test_key_records_unwrapped_by_the_child_install_the_same_deks(
    source: tuple[Client, ListServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    unwrapped_here = opened_by_the_engine(monkeypatch)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        assert engine(a, server, parallel=True).pull() == 240
        # Nothing was opened by the parent: the child answered every record.
        assert unwrapped_here == []
        assert engine(b, server, parallel=False).pull() == 240
        assert len(unwrapped_here) == 280  # without the child: every record opened here
        assert rows(a) == rows(b)
        # The DEKs the parent installed open every event of the log.
        assert a.rebuild() == 240


def test_a_key_verdict_without_a_whole_key_is_checked_here(
    source: tuple[Client, ListServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    real_verdict = verifier_module._verdict

    def short(*args: object) -> object:
        verdict = real_verdict(*args)  # type: ignore[arg-type]
        if verdict is None or verdict[0] != "key":
            return verdict
        return (*verdict[:5], verdict[5][:16])  # half a DEK: not installed as it is

    monkeypatch.setattr(verifier_module, "_verdict", short)
    opened_here = opened_by_the_engine(monkeypatch)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        assert engine(a, server, parallel=True).pull() == 240
        assert len(opened_here) == 40  # each key record, unwrapped here instead
        engine(b, server, parallel=False).pull()
        assert rows(a) == rows(b)
        assert a.rebuild() == 240


def test_events_whose_key_came_in_an_earlier_pull_are_opened_here(
    source: tuple[Client, ListServer], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    client, server = source
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a:
        assert engine(a, server, parallel=True).pull() == 240
        for i in range(40):  # more events of the same aggregates: their keys are known here
            append_events(client, f"00000000-0000-4000-8000-{i:012x}", 3, f"b{i}-")
        SyncEngine(client.store, client.log, server, client.store_id, lambda: None).push()
        second = engine(a, server, parallel=True)
        assert second.pull() == 120
        assert second.verified_elsewhere == 0  # the child never saw those key records
        assert sorted(r.event_id for r in a.store.read_commit_order()) == sorted(
            r.event_id for r in server.records)


def same_models(a: Client, b: Client) -> None:
    """The read models of two devices hold the same entries, states and conflicts."""
    mine, theirs = a.session.projector.model, b.session.projector.model
    assert mine.applied == theirs.applied
    entries = dict(theirs.entries())
    assert dict(mine.entries()).keys() == entries.keys()
    for aggregate_id, entry in mine.entries():
        assert (entry.version, entry.state) == (entries[aggregate_id].version,
                                                entries[aggregate_id].state)
    assert mine.conflicts() == theirs.conflicts()


@pytest.mark.parametrize("parallel", [True, False], ids=["folded-by-child", "folded-here"])
def test_a_joining_device_folds_pulled_events_without_decrypting_them_again(
    source: tuple[Client, ListServer], tmp_path: Path, parallel: bool,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        opened = a.log.opened
        pulling = following(a, server, group_records=100, verify_in_parallel=parallel)
        follower = pulling.follower
        assert follower is not None
        assert pulling.pull() == 240
        assert (pulling.verified_elsewhere == 280) is parallel
        assert a.log.opened == opened  # nothing read back from the log and decrypted again
        assert follower.covers_all() and follower.cursor.synced == 280
        engine(b, server, parallel=False).pull()  # b's model: replayed from the log
        same_models(a, b)


def test_a_child_lost_while_folding_leaves_the_read_model_to_the_log(
    source: tuple[Client, ListServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    real_fold = verifier_module.PageVerifier.fold
    folds = []

    def dying(self: verifier_module.PageVerifier, through: int, extra: object) -> None:
        real_fold(self, through, extra)  # type: ignore[arg-type]
        folds.append(through)
        if len(folds) == 1:
            os.kill(self._pid, signal.SIGKILL)

    monkeypatch.setattr(verifier_module.PageVerifier, "fold", dying)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        opened = a.log.opened
        following(a, server, group_records=100).pull()
        assert a.log.opened - opened == 240  # caught up from the log after the pull
        engine(b, server, parallel=False).pull()
        same_models(a, b)
        assert rows(a) == rows(b)


def test_a_state_that_does_not_end_where_expected_is_not_adopted(
    source: tuple[Client, ListServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    client, server = source
    real_state = Projector.forked_state

    def short(self: Projector) -> bytes:  # runs in the child: claims one sequence less
        body = cbor2.loads(real_state(self))
        body[2] -= 1
        return cbor2.dumps(body)

    monkeypatch.setattr(Projector, "forked_state", short)
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        opened = a.log.opened
        following(a, server).pull()
        assert a.log.opened - opened == 240  # refused, then caught up from the log
        engine(b, server, parallel=False).pull()
        same_models(a, b)


def test_following_stops_when_pulled_events_do_not_append(
    source: tuple[Client, ListServer], tmp_path: Path
) -> None:
    client, server = source
    with joiner(client, tmp_path / "a") as a:
        follower = a.pull_follower()
        assert follower is not None
        append_events(a, "00000000-0000-4000-8000-00000000ffff", 1, "local")  # pending
        a.refresh()
        opened = a.log.opened
        following(a, server).pull()
        # With an event pending, pulled ones sort before it: the projector caught
        # up from the log instead (a rebuild, since the order changed).
        assert a.log.opened > opened
        assert follower.model.applied == 241


def test_a_large_pull_of_events_with_known_keys_is_caught_up_from_the_log(
    source: tuple[Client, ListServer], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The child never saw these events' key records (an earlier pull brought them),
    # so it cannot fold them: following stops, and the catch-up reads them.
    client, server = source
    if ran_in_a_fresh_process(request):
        return
    with joiner(client, tmp_path / "a") as a, joiner(client, tmp_path / "b") as b:
        following(a, server).pull()
        for i in range(40):
            append_events(client, f"00000000-0000-4000-8000-{i:012x}", 5, f"c{i}-")
        SyncEngine(client.store, client.log, server, client.store_id, lambda: None).push()
        opened = a.log.opened
        second = following(a, server, group_records=100)
        assert second.pull() == 200
        assert a.log.opened - opened == 200  # read back from the log by the catch-up
        engine(b, server, parallel=False).pull()
        same_models(a, b)
        assert a.session.projector.covers_all()
