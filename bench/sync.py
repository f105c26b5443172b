"""Benchmark: end-to-end sync through the real client engine, on SQLite and PostgreSQL.

- push of N events (default 50,000) from one device: sealed records read from the
  local store, pushed in batches, acknowledged and marked synced;
- pull + apply + rebuild on a second device that joins: records verified,
  inserted, DEKs installed, derived state rebuilt;
- then the server-level figures of `bench/sync_server.py` for the same backend:
  single-record push latency (1 and 16 concurrent clients) and the baseline of the
  same bytes POSTed to a trivial endpoint of the same server stack.

    .venv/bin/python bench/sync.py [--events 50000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import sync_server
from mo_local.app.ports import EventMeta
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF
from mo_local.domain.events import GoalCreated, GoalRefined
from mo_local.domain.values import Priority, Slice, TargetMonth, format_timestamp
from mo_local.repository import EncryptedRepository
from mo_local.sync import session
from mo_local.sync.transport import Transport

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
            rebuilt = d2.rebuild()
            rebuild_s = time.perf_counter() - started
        d2.close()
    total = pulled_s + rebuild_s
    print(f"== {label}: {events:,} events ({records:,} records with key records)")
    print(f"push (client engine)          : {records / push_s:9,.0f} records/s "
          f"({pushed:,} pushed in {push_s:.2f} s)")
    print(f"pull + apply (join)           : {pulled / pulled_s:9,.0f} records/s "
          f"({pulled:,} in {pulled_s:.2f} s)")
    print(f"pull + apply + rebuild        : {rebuilt / total:9,.0f} events/s "
          f"({rebuilt:,} events in {total:.2f} s; rebuild alone {rebuilt / rebuild_s:,.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--server-records", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
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
