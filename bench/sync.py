"""Benchmark: end-to-end sync through the real client engine, on SQLite and PostgreSQL.

- push of N events (default 50,000) from one device: sealed records read from the
  local store, pushed in batches, acknowledged and marked synced;
- pull + apply + rebuild on a second device that joins: records verified,
  inserted, DEKs installed, and derived state built — folded from the plaintext
  as each group of records commits — timed until the first `goal list` has
  answered and the encrypted cache is saved; a full rebuild from the log is
  timed afterwards for comparison;
- then the server-level figures of `bench/sync_server.py` for the same backend:
  single-record push latency (1 and 16 concurrent clients) and the baseline of the
  same bytes POSTed to a trivial endpoint of the same server stack.

First, the same push and pull + apply through the client engine against an
in-memory stand-in of the server (records kept in a list, same protocol checks):
the client's own cost, and its share of the end-to-end time above.

    .venv/bin/python bench/sync.py [--events 50000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sync_server
from mo_local.app.ports import EventMeta
from mo_local.app.queries import ListGoals
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF
from mo_local.domain.events import GoalCreated, GoalRefined
from mo_local.domain.values import Priority, Slice, TargetMonth, format_timestamp
from mo_local.repository import EncryptedRepository
from mo_local.sync import session
from mo_local.sync.engine import SyncEngine
from mo_local.sync.remote import RemoteConfig, RemoteState
from mo_local.sync.transport import (
    OutgoingRecord,
    PulledRecord,
    PullPage,
    PushResult,
    Transport,
)

PASSPHRASE = "bench passphrase"
PASSWORD = "bench account password"


def fill(client: Client, events: int, per_aggregate: int = 10) -> None:
    """Goal events written straight through the repository in one transaction."""
    repo = EncryptedRepository(client.log)
    at = format_timestamp(datetime.now(UTC))
    meta = EventMeta(at, "bench")
    with client.store.transaction():
        for i in range(events // per_aggregate):
            goal_id = str(uuid.uuid4())
            evs = [GoalCreated(goal_id, at, f"Goal {i}", Slice.WORK, Priority.MUST,
                               TargetMonth(2027, 5))]
            evs += [GoalRefined(goal_id, at, f"Goal {i} v{k}") for k in range(per_aggregate - 1)]
            repo.append("goal", goal_id, 0, evs, meta)


class MemoryServer:
    """The sync protocol over a list: idempotent pushes checked against the head, pages."""

    def __init__(self) -> None:
        self.records: list[PulledRecord] = []
        self.seqs: dict[str, int] = {}

    def push(self, store_id: str, expected_head: int,
             records: Sequence[OutgoingRecord]) -> PushResult:
        if any(r.event_id not in self.seqs for r in records) and expected_head != len(
                self.records):
            raise AssertionError("the bench pushes from one device only")
        for r in records:
            if r.event_id not in self.seqs:
                self.records.append(PulledRecord(len(self.records) + 1, r.event_id, r.record))
                self.seqs[r.event_id] = len(self.records)
        return PushResult(len(self.records), {r.event_id: self.seqs[r.event_id] for r in records})

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        page = tuple(self.records[since:since + limit])
        return PullPage(page, len(self.records), since + limit < len(self.records))


def run_client_only(events: int, tmp: Path) -> None:
    """Push and pull + apply through the engine, the server replaced by `MemoryServer`."""
    d1, _ = Client.create(tmp / "memory-d1", PASSPHRASE, MINIMUM_KDF)
    fill(d1, events)
    server = MemoryServer()
    config = RemoteConfig("http://memory", "bench", d1.store_id)
    RemoteState(d1.store).connect(config)
    started = time.perf_counter()
    pushed = SyncEngine(d1.store, d1.log, server, d1.store_id, lambda: None).push()
    push_s = time.perf_counter() - started
    records = len(server.records)
    d2 = Client.create_from_header(tmp / "memory-d2", d1.vault_header, PASSPHRASE)
    d1.close()
    RemoteState(d2.store).connect(config)
    started = time.perf_counter()
    pulled = SyncEngine(d2.store, d2.log, server, d2.store_id, lambda: None).pull()
    pull_s = time.perf_counter() - started
    d2.close()
    print(f"== client engine alone (server stand-in in memory): {events:,} events "
          f"({records:,} records)")
    print(f"push (client engine)          : {records / push_s:9,.0f} records/s "
          f"({pushed:,} pushed in {push_s:.2f} s)")
    print(f"pull + apply                  : {pulled / pull_s:9,.0f} records/s "
          f"({pulled:,} in {pull_s:.2f} s)")


def run(label: str, url: str, events: int, tmp: Path) -> None:
    with sync_server.server_process(url) as (base, _pid):
        d1, _ = Client.create(tmp / f"{label}-d1", PASSPHRASE, MINIMUM_KDF)
        fill(d1, events)
        records = d1.store.count_pending()
        email = f"bench-{uuid.uuid4().hex[:8]}@example.test"
        with Transport(base) as transport:
            session.signup(d1, transport, email, PASSWORD)
            started = time.perf_counter()
            pushed = session.sync_once(d1, transport).result.pushed
            push_s = time.perf_counter() - started
        d1.close()

        with Transport(base) as transport:
            started = time.perf_counter()
            d2, pulled = session.join(
                transport, email, PASSWORD,
                lambda header: Client.create_from_header(tmp / f"{label}-d2", header, PASSPHRASE),
            )
            pulled_s = time.perf_counter() - started
            started = time.perf_counter()
            listed = len(d2.list_goals(ListGoals()))
            d2.session.projector.save()  # what closing would write: the encrypted cache
            ready_s = time.perf_counter() - started
            if listed != events // 10:
                raise SystemExit(f"the joined device lists {listed} goals, not {events // 10}")
            started = time.perf_counter()
            rebuilt = d2.rebuild()
            rebuild_s = time.perf_counter() - started
        d2.close()
    total = pulled_s + ready_s
    print(f"== {label}: {events:,} events ({records:,} records with key records)")
    print(f"push (client engine)          : {records / push_s:9,.0f} records/s "
          f"({pushed:,} pushed in {push_s:.2f} s)")
    print(f"pull + apply + rebuild (join) : {pulled / total:9,.0f} events/s "
          f"({pulled:,} events in {total:.2f} s: join {pulled_s:.2f} s with derived state "
          f"folded in, first list + cache save {ready_s:.2f} s)")
    print(f"full rebuild from the log     : {rebuilt / rebuild_s:9,.0f} events/s "
          f"({rebuilt:,} events in {rebuild_s:.2f} s; for comparison)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--server-records", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run_client_only(args.events, tmp)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{tmp / 'server.db'}"
            run("sqlite", url, args.events, tmp)
            sync_server.run_backend("sqlite (server level)", f"sqlite:///{tmp / 'srv2.db'}",
                                    args.server_records)
        if args.backend in ("postgres", "both"):
            with sync_server.postgres_database() as pg:
                run("postgres", pg, args.events, tmp)
            with sync_server.postgres_database() as pg:
                sync_server.run_backend("postgres (server level)", pg, args.server_records)


if __name__ == "__main__":
    main()
