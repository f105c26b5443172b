"""PostgreSQL hot paths in one round trip: the `mo_push` procedure (migrations 0002 and
0003) and `AsyncPostgres`, the event-loop connection pool that sends it.

The HTTP behaviour of push and pull is tested on both backends elsewhere; these tests
pin what only PostgreSQL has: the procedure's outcomes called directly, when it
notifies, that it must run outside a transaction block, that a push of one record (its
own plain path since 0003) answers exactly like a batch, the migrations' downgrades,
and how the pool handles errors, dead connections, cancellation, event loops and its
connection limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from alembic import command
from sqlalchemy.exc import DataError, OperationalError

from mo_local.server import create_app
from mo_local.server.async_postgres import AsyncPostgres
from mo_local.server.database import Database
from mo_local.server.migrate import _config, upgrade
from mo_local.server.settings import libpq_url
from mo_local.server.statements import _POSTGRES_PUSH

from .helpers import Api, make_settings, serve_in_thread, wait_until

pytestmark = pytest.mark.postgres

CHANNEL = "mo_test_push_procedure"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Fixture:
    """An account with a live and an expired session, its store, and another account's."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.account = uuid.uuid4()
        self.other_account = uuid.uuid4()
        self.token = hashlib.sha256(uuid.uuid4().bytes).digest()
        self.expired_token = hashlib.sha256(uuid.uuid4().bytes).digest()
        self.store = uuid.uuid4()
        self.other_store = uuid.uuid4()
        for account in (self.account, self.other_account):
            conn.execute("INSERT INTO accounts (id, created_at) VALUES (%s, %s)", (account, NOW))
        conn.execute(
            "INSERT INTO sessions VALUES (%s, %s, %s), (%s, %s, %s)",
            (
                self.token,
                self.account,
                NOW + timedelta(hours=1),
                self.expired_token,
                self.account,
                NOW,
            ),
        )
        for store, owner in ((self.store, self.account), (self.other_store, self.other_account)):
            conn.execute(
                "INSERT INTO stores (store_id, owner_account_id, head, created_at) "
                "VALUES (%s, %s, 0, %s)",
                (store, owner, NOW),
            )

    def push(
        self,
        expected_head: int,
        records: list[tuple[uuid.UUID, bytes]],
        *,
        token: bytes | None = None,
        account: uuid.UUID | None = None,
        store: uuid.UUID | None = None,
    ) -> tuple[Any, ...]:
        """One `CALL mo_push` with the server's own statement text."""
        if account is None and token is None:
            token = self.token
        row = self.conn.execute(
            _POSTGRES_PUSH,
            (
                token,
                account,
                store or self.store,
                expected_head,
                [event_id for event_id, _ in records],
                [data for _, data in records],
                NOW,
                NOW,
                CHANNEL,
            ),
            binary=True,
        ).fetchone()
        assert row is not None
        return tuple(row)

    def stored(self, store: uuid.UUID | None = None) -> tuple[int, list[tuple[int, bytes]]]:
        """The store's head and its (seq, record) rows."""
        store = store or self.store
        head = self.conn.execute("SELECT head FROM stores WHERE store_id = %s", (store,))
        rows = self.conn.execute(
            "SELECT seq, record FROM records WHERE store_id = %s ORDER BY seq", (store,)
        ).fetchall()
        found = head.fetchone()
        assert found is not None
        return found[0], [(seq, bytes(record)) for seq, record in rows]


@pytest.fixture
def pg(migrated_postgres_url: str) -> Iterator[Fixture]:
    with psycopg.connect(libpq_url(migrated_postgres_url), autocommit=True) as conn:
        yield Fixture(conn)


def _record(data: bytes) -> tuple[uuid.UUID, bytes]:
    return uuid.uuid4(), data


def test_mo_push_appends_gapless_and_answers_retries_with_the_same_sequences(pg: Fixture) -> None:
    """INV-008/INV-009: new records get head+1… in request order; a retry stores nothing
    and answers the same sequences whatever its expected head; a batch mixing stored
    and new records appends only the new ones."""
    first, second, third = _record(b"a"), _record(b"b"), _record(b"c")
    assert pg.push(0, [first, second]) == ("stored", 2, [1, 2], 2, None)
    assert pg.push(0, [first, second]) == ("stored", 2, [1, 2], 0, None)
    assert pg.push(7, [second]) == ("stored", 2, [2], 0, None)
    assert pg.push(2, [third, first]) == ("stored", 3, [3, 1], 1, None)
    assert pg.push(3, []) == ("stored", 3, [], 0, None)
    assert pg.stored() == (3, [(1, b"a"), (2, b"b"), (3, b"c")])


def test_mo_push_refusals_write_nothing(pg: Fixture) -> None:
    """Idempotency comes before the head check, the conflict check before both, and the
    session and ownership before everything; every refusal leaves the store as it was."""
    kept = _record(b"kept")
    assert pg.push(0, [kept])[0] == "stored"
    new = _record(b"new")
    clash = (kept[0], b"other bytes")
    assert pg.push(0, [new]) == ("server_ahead", 1, None, 0, None)
    assert pg.push(5, [new]) == ("server_behind", 1, None, 0, None)
    assert pg.push(1, [new, clash]) == ("event_id_conflict", 1, None, 0, kept[0])
    assert pg.push(1, [new], token=pg.expired_token)[0] == "unauthorized"
    assert pg.push(1, [new], token=hashlib.sha256(b"unknown").digest())[0] == "unauthorized"
    assert pg.push(1, [new], store=uuid.uuid4())[0] == "store_not_found"
    assert pg.push(0, [new], store=pg.other_store)[0] == "store_not_found"
    assert pg.stored() == (1, [(1, b"kept")])
    assert pg.stored(pg.other_store) == (0, [])


def test_mo_push_takes_a_verified_account_instead_of_a_session(pg: Fixture) -> None:
    """Kratos: the caller passes the account it verified; no session is looked up."""
    assert pg.push(0, [_record(b"k")], account=pg.account)[:2] == ("stored", 1)
    assert pg.push(0, [_record(b"k")], account=pg.other_account)[0] == "store_not_found"


def test_mo_push_notifies_after_a_push_that_stored_records_only(
    pg: Fixture, migrated_postgres_url: str
) -> None:
    """One notification (the store id) per push that appended; none for a retry or a
    refusal. It is sent after the push committed, so a woken reader sees the records."""
    with psycopg.connect(libpq_url(migrated_postgres_url), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        record = _record(b"x")
        pg.push(0, [record])
        pg.push(0, [record])  # retry: nothing new
        pg.push(0, [_record(b"y")])  # server_ahead
        pg.push(1, [_record(b"z")], store=pg.other_store)  # store_not_found
        received = [n.payload for n in listener.notifies(timeout=1.0, stop_after=4)]
        assert received == [str(pg.store)]
        assert pg.stored()[0] == 1


def test_mo_push_refuses_to_run_inside_a_transaction_block(pg: Fixture) -> None:
    """The procedure commits, so it only runs in autocommit mode, as the server calls it."""
    pg.conn.autocommit = False
    try:
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            pg.push(0, [_record(b"t")])
        pg.conn.rollback()
    finally:
        pg.conn.autocommit = True
    assert pg.stored() == (0, [])


def test_mo_push_of_one_record_follows_the_same_rules(pg: Fixture) -> None:
    """A push of exactly one record takes the plain path of migration 0003: the same
    outcomes, in the same order of checks, as the batch path, and the same rows."""
    first = _record(b"one")
    assert pg.push(0, [first]) == ("stored", 1, [1], 1, None)
    assert pg.push(0, [first]) == ("stored", 1, [1], 0, None)  # retry, stale head
    assert pg.push(9, [first]) == ("stored", 1, [1], 0, None)  # retry, head from the future
    assert pg.push(0, [(first[0], b"other")]) == ("event_id_conflict", 1, None, 0, first[0])
    second = _record(b"two")
    assert pg.push(0, [second]) == ("server_ahead", 1, None, 0, None)
    assert pg.push(2, [second]) == ("server_behind", 1, None, 0, None)
    assert pg.push(1, [second], token=pg.expired_token)[0] == "unauthorized"
    assert pg.push(1, [second], store=pg.other_store)[0] == "store_not_found"
    assert pg.push(1, [second]) == ("stored", 2, [2], 1, None)
    # The same records answer the same sequences through the batch path.
    assert pg.push(0, [second, first]) == ("stored", 2, [2, 1], 0, None)
    assert pg.stored() == (2, [(1, b"one"), (2, b"two")])


def test_mo_push_of_one_record_notifies_only_when_it_stored(
    pg: Fixture, migrated_postgres_url: str
) -> None:
    with psycopg.connect(libpq_url(migrated_postgres_url), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        record = _record(b"n")
        assert pg.push(0, [record])[0] == "stored"
        assert pg.push(0, [record])[3] == 0  # retry
        assert pg.push(0, [(record[0], b"clash")])[0] == "event_id_conflict"
        received = [n.payload for n in listener.notifies(timeout=1.0, stop_after=3)]
        assert received == [str(pg.store)]


def test_migrations_0003_and_0002_downgrade_and_upgrade_again(fresh_postgres_url: str) -> None:
    """0003 → 0002 puts back the batch-only procedure; 0002 → 0001 drops it."""
    database = Database(fresh_postgres_url)
    source = "SELECT prosrc FROM pg_proc WHERE proname = 'mo_push'"
    try:
        assert upgrade(fresh_postgres_url) == "0004"
        with database.write() as conn:
            assert "cardinality(p_event_ids) = 1" in conn.exec_driver_sql(source).scalar_one()
            command.downgrade(_config(conn), "0002")
            previous = conn.exec_driver_sql(source).scalar_one()
            assert "unnest(p_event_ids, p_records)" in previous
            assert "cardinality" not in previous
            command.downgrade(_config(conn), "0001")
            assert conn.exec_driver_sql(source).first() is None
        assert upgrade(fresh_postgres_url) == "0004"
        with database.snapshot() as conn:
            assert "cardinality(p_event_ids) = 1" in conn.exec_driver_sql(source).scalar_one()
    finally:
        database.dispose()


# -- AsyncPostgres ---------------------------------------------------------------------


def test_a_server_runs_its_hot_paths_on_at_most_postgres_connections(
    migrated_postgres_url: str,
) -> None:
    """`ServerSettings.postgres_connections` bounds the event-loop pool: many concurrent
    pushes and pulls queue in the process and share that many connections."""
    app = create_app(make_settings(migrated_postgres_url, postgres_connections=2))
    context = app.state.mo
    with serve_in_thread(app) as server, Api(server) as owner:
        owner.signup()
        stores = [owner.claim() for _ in range(6)]

        def push_then_pull(store: str) -> None:
            with httpx.Client(base_url=server, headers=owner.auth) as client:
                for head in range(4):
                    body = {"expected_head": head, "records": [_wire_record()]}
                    assert client.post(f"/v1/stores/{store}/push", json=body).status_code == 200
                    assert client.get(f"/v1/stores/{store}/pull").status_code == 200

        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(push_then_pull, stores))
        assert context.database.async_postgres.idle_connections in (1, 2)
    with pytest.raises(ValueError, match="postgres_connections"):
        make_settings(migrated_postgres_url, postgres_connections=0)


def _wire_record() -> dict[str, str]:
    return {"event_id": str(uuid.uuid4()), "record": "AAAA"}


def _pool(url: str, max_connections: int = 4) -> AsyncPostgres:
    return AsyncPostgres(libpq_url(url), max_connections=max_connections)


def test_statement_errors_are_sqlalchemy_errors_and_keep_the_connection(
    migrated_postgres_url: str,
) -> None:
    """A failing statement raises the SQLAlchemy type a Core statement would (so it maps
    to the same problem response), and its healthy connection is reused."""
    pool = _pool(migrated_postgres_url)

    async def scenario() -> None:
        with pytest.raises(DataError):
            await pool.fetch("SELECT 1 / 0", ())
        assert pool.idle_connections == 1
        assert await pool.fetch("SELECT %b::int", (2,)) == [(2,)]
        assert pool.idle_connections == 1
        await pool.aclose()
        assert pool.idle_connections == 0

    asyncio.run(scenario())


def test_an_unreachable_database_is_an_operational_error() -> None:
    """Maps to 503 `database_unavailable` like any other database outage."""
    pool = AsyncPostgres("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(OperationalError):
        asyncio.run(pool.fetch("SELECT 1", ()))


def test_a_dead_pooled_connection_is_replaced_transparently(
    migrated_postgres_url: str,
) -> None:
    """A pooled connection the server dropped (restart, idle kill) costs one retry on a
    fresh connection, not an error."""
    pool = _pool(migrated_postgres_url)
    admin = psycopg.connect(libpq_url(migrated_postgres_url), autocommit=True)

    async def scenario() -> None:
        [(pid,)] = await pool.fetch("SELECT pg_backend_pid()", ())
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        [(new_pid,)] = await pool.fetch("SELECT pg_backend_pid()", ())
        assert new_pid != pid
        assert pool.idle_connections == 1
        await pool.aclose()

    try:
        asyncio.run(scenario())
    finally:
        admin.close()


def test_a_cancelled_statement_leaves_a_usable_pool(migrated_postgres_url: str) -> None:
    """A request cancelled mid-statement neither hangs the pool nor leaves a busy
    connection in it."""
    pool = _pool(migrated_postgres_url)

    async def scenario() -> None:
        slow = asyncio.create_task(pool.fetch("SELECT pg_sleep(30)", ()))
        await asyncio.sleep(0.3)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(slow, timeout=10)
        assert pool.idle_connections <= 1
        assert await asyncio.wait_for(pool.fetch("SELECT 1", ()), timeout=10) == [(1,)]
        await pool.aclose()

    asyncio.run(scenario())


def test_the_pool_follows_the_running_event_loop(migrated_postgres_url: str) -> None:
    """Used from a new event loop (a test client may start one per request), the pool
    closes the old loop's connections and opens new ones."""
    pool = _pool(migrated_postgres_url)
    admin = psycopg.connect(libpq_url(migrated_postgres_url), autocommit=True)

    async def backend_pid() -> int:
        [(pid,)] = await pool.fetch("SELECT pg_backend_pid()", ())
        return int(pid)

    try:
        first = asyncio.run(backend_pid())
        second = asyncio.run(backend_pid())
        assert first != second

        def gone() -> bool:
            found = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,))
            return found.fetchone() is None

        wait_until(gone, 5, "the first loop's connection to close")
        asyncio.run(pool.aclose())
    finally:
        admin.close()


def test_at_most_max_connections_are_used_at_once(migrated_postgres_url: str) -> None:
    pool = _pool(migrated_postgres_url, max_connections=2)

    async def scenario() -> set[int]:
        rows = await asyncio.gather(
            *(pool.fetch("SELECT pg_backend_pid() FROM pg_sleep(0.05)", ()) for _ in range(6))
        )
        await pool.aclose()
        return {row[0][0] for row in rows}

    assert len(asyncio.run(scenario())) <= 2
