"""Property: random offline appends and sync interleavings on three devices converge."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync_fixtures import FAST_KDF, PASSPHRASE, PASSWORD, RunningServer, envelope, new_email

from mo_local.client import Client
from mo_local.eventlog import Envelope
from mo_local.sync import session
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.engine import SyncEngine
from mo_local.sync.errors import RemoteUnreachable
from mo_local.sync.transport import OutgoingRecord, PullPage, PushResult, Transport

NO_WAIT = RetryPolicy(attempts=3, sleep=lambda _s: None)


class LosesFirstAck:
    """A transport whose first push is stored by the server but whose answer is lost."""

    def __init__(self, inner: Transport):
        self.inner = inner
        self.lost = False

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        result = self.inner.push(store_id, expected_head, records)
        if not self.lost:
            self.lost = True
            raise RemoteUnreachable("injected: acknowledgement lost")
        return result

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        return self.inner.pull(store_id, since, limit, wait)


step = st.tuples(
    st.integers(0, 2),                                   # device
    st.sampled_from(["append", "append", "sync", "lossy_sync"]),
    st.integers(0, 3),                                   # aggregate (3 = a new one)
    st.integers(1, 3),                                   # events to append
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=20))
def test_inv001_inv010_inv018_devices_converge(
    server: RunningServer, steps: list[tuple[int, str, int, int]]
) -> None:
    """INV-001, INV-010, INV-018: any interleaving ends identical on every device.

    Synced record bytes never change once synced anywhere; every event keeps its id
    and plaintext through any number of rebases; versions stay contiguous.
    """
    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(Path(tmp), server, steps)


def run_scenario(tmp: Path, server: RunningServer, steps: list[tuple[int, str, int, int]]) -> None:
    email = new_email()
    first, _ = Client.create(tmp / "d0", PASSPHRASE, FAST_KDF)
    devices = [first]
    transports = [Transport(server.url)]
    plaintext: dict[str, Envelope] = {}
    synced_bytes: dict[str, bytes] = {}
    try:
        session.signup(first, transports[0], email, PASSWORD)
        shared = [str(uuid.uuid4()) for _ in range(3)]
        for aggregate in shared:
            base = envelope("base", first.device_id)
            for row in first.log.append("goal", aggregate, 0, [base]):
                plaintext[row.event_id] = base
        session.sync_once(first, transports[0], retry=NO_WAIT)
        for i in (1, 2):
            transport = Transport(server.url)
            client, _ = session.join(
                transport, email, PASSWORD,
                lambda h, i=i: Client.create_from_header(tmp / f"d{i}", h, PASSPHRASE))
            devices.append(client)
            transports.append(transport)

        def check_synced(client: Client) -> None:
            for row in client.store.read_commit_order():
                if row.global_seq is None:
                    continue
                seen = synced_bytes.setdefault(row.event_id, row.record)
                assert seen == row.record, "INV-001: a synced record changed"

        def sync(index: int, lossy: bool = False) -> None:
            client = devices[index]
            inner = transports[index]
            engine = SyncEngine(client.store, client.log,
                                LosesFirstAck(inner) if lossy else inner,
                                client.store_id, lambda: None, retry=NO_WAIT)
            engine.sync()
            check_synced(client)

        for device, op, aggregate_index, count in steps:
            client = devices[device]
            if op == "append":
                aggregate = (shared[aggregate_index] if aggregate_index < 3
                             else str(uuid.uuid4()))
                version = client.store.current_version(aggregate)
                tag = uuid.uuid4().hex[:6]
                envelopes = [envelope(f"{tag}-{n}", client.device_id) for n in range(count)]
                rows = client.log.append("goal", aggregate, version, envelopes)
                for row, env in zip(rows, envelopes, strict=True):
                    plaintext[row.event_id] = env
            else:
                sync(device, lossy=op == "lossy_sync")

        for _ in range(2):
            for index in range(3):
                sync(index)

        views = []
        for client in devices:
            assert client.store.count_pending() == 0
            triples = sorted((e.aggregate_id, e.version, e.event_id, e.global_seq)
                             for e in client.store.read_commit_order() if e.kind == "event")
            views.append(triples)
            by_aggregate: dict[str, list[int]] = {}
            for aggregate, version, _, _ in triples:
                by_aggregate.setdefault(aggregate, []).append(version)
            for versions in by_aggregate.values():
                assert versions == list(range(1, len(versions) + 1))
            opened = {o.stored.event_id: o.envelope for o in client.log.read_effective()}
            assert opened == plaintext, "INV-010: an event changed id or plaintext"
        assert views[0] == views[1] == views[2]
        page = transports[0].pull(first.store_id, 0, 1000)
        assert [r.seq for r in page.records] == list(range(1, page.head + 1))
    finally:
        for client in devices:
            client.close()
        for transport in transports:
            transport.close()
