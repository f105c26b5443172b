"""The fast paths of push and pull keep every guarantee of the plain ones.

Driver-level SQL writes the same values SQLAlchemy Core does; the session is checked
inside the operation; on SQLite a unit of work that would have to wait for a lock
runs in a worker thread instead of blocking the event loop; the base64url decoder
accepts exactly its documented pattern.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import re
import sqlite3
import subprocess
import sys
import threading
import uuid
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, select, text, update
from sqlalchemy.exc import OperationalError

from mo_local.server.allocator import freeze_startup_heap
from mo_local.server.database import Database
from mo_local.server.errors import InvalidBase64
from mo_local.server.migrate import upgrade
from mo_local.server.models import _BASE64URL_PATTERN, decode_base64url, encode_base64url
from mo_local.server.schema import records, sessions
from mo_local.server.settings import sqlalchemy_url

from .helpers import PASSWORD, Api, new_email, random_record

_PATTERN = re.compile(_BASE64URL_PATTERN)


@given(st.text(alphabet="AZaz09-_=+/ \n\x00é", max_size=14))
def test_decoder_accepts_exactly_the_documented_pattern(candidate: str) -> None:
    try:
        decoded: bytes | None = decode_base64url(candidate)
    except InvalidBase64:
        decoded = None
    if _PATTERN.fullmatch(candidate) is None:
        assert decoded is None
    else:
        stripped = candidate.rstrip("=")
        assert decoded == base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


@given(st.binary(max_size=70))
def test_inv004_base64url_round_trip_is_unpadded_and_exact(data: bytes) -> None:
    encoded = encode_base64url(data)
    assert "=" not in encoded and _PATTERN.fullmatch(encoded)
    assert decode_base64url(encoded) == data
    assert decode_base64url(encoded + "=" * (-len(encoded) % 4)) == data


def test_driver_level_rows_read_back_like_core_rows(alice: Api, database_url: str) -> None:
    """INV-004: records pushed through driver-level SQL read back through SQLAlchemy Core
    with the same ids, order, bytes and a UTC receive time."""
    store = alice.claim()
    batch = [random_record(size) for size in (1, 300, 5000)]
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert alice.push(store, 0, batch).status_code == 200
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        rows = conn.execute(
            select(records.c.seq, records.c.event_id, records.c.record, records.c.received_at)
            .where(records.c.store_id == uuid.UUID(store))
            .order_by(records.c.seq)
        ).all()
    engine.dispose()
    assert [(row.seq, row.event_id, bytes(row.record)) for row in rows] == [
        (n, uuid.UUID(eid), data) for n, (eid, data) in enumerate(batch, 1)
    ]
    for row in rows:
        received = row.received_at
        received = received.replace(tzinfo=UTC) if received.tzinfo is None else received
        assert before <= received <= datetime.now(UTC) + timedelta(seconds=5)


def test_revoked_and_expired_tokens_cannot_push_or_pull(server: str, database_url: str) -> None:
    """The session is checked inside push and pull: a revoked or expired token is 401 and
    stores nothing, and a live token of the same account still works."""
    email = new_email()
    with Api(server) as owner, Api(server) as revoked, Api(server) as expired:
        owner.signup(email=email)
        store = owner.claim()
        assert owner.push(store, 0, [random_record()]).status_code == 200
        for other in (revoked, expired):
            login = other.login(email, PASSWORD)
            assert login.status_code == 200
            other.token = login.json()["token"]
        assert revoked.client.post("/v1/auth/logout", headers=revoked.auth).status_code == 204
        assert expired.token is not None
        digest = hashlib.sha256(expired.token.encode()).digest()
        engine = create_engine(sqlalchemy_url(database_url))
        with engine.begin() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.token_sha256 == digest)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        engine.dispose()
        for api in (revoked, expired):
            push = api.push(store, 1, [random_record()])
            pull = api.pull(store)
            assert (push.status_code, push.json()["code"]) == (401, "unauthorized")
            assert (pull.status_code, pull.json()["code"]) == (401, "unauthorized")
        assert [seq for seq, _, _ in owner.pull_all(store)] == [1]


def _sqlite_database(tmp_path: Path, busy_timeout_ms: int) -> tuple[Database, Path]:
    path = tmp_path / "server.db"
    upgrade(f"sqlite:///{path}")
    return Database(f"sqlite:///{path}", sqlite_busy_timeout_ms=busy_timeout_ms), path


def _insert_marker(conn: Connection) -> int:
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS marker (n INTEGER)")
    conn.exec_driver_sql("INSERT INTO marker VALUES (1)")
    count: int = conn.exec_driver_sql("SELECT count(*) FROM marker").scalar_one()
    return count


def test_sqlite_write_waits_for_another_process_in_a_thread_not_on_the_loop(
    tmp_path: Path,
) -> None:
    """While another connection holds SQLite's write lock, a write waits for it in a worker
    thread: the event loop keeps serving, and the write commits once the lock is free."""
    database, path = _sqlite_database(tmp_path, busy_timeout_ms=20_000)
    holder = sqlite3.connect(path, isolation_level=None)

    async def scenario() -> int:
        holder.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(database.run_write(_insert_marker))
        # The loop gets control back at once and keeps running while the write waits.
        for _ in range(50):
            await asyncio.sleep(0)
        assert not write.done()
        holder.execute("COMMIT")
        return await asyncio.wait_for(write, timeout=20)

    try:
        assert asyncio.run(scenario()) == 1
        assert holder.execute("SELECT count(*) FROM marker").fetchone() == (1,)
    finally:
        holder.close()
        database.dispose()


def test_sqlite_write_locked_past_the_busy_timeout_is_a_database_error(tmp_path: Path) -> None:
    """A lock held past the busy timeout still ends as the OperationalError that the app
    answers with 503 `database_unavailable`, and nothing is written."""
    database, path = _sqlite_database(tmp_path, busy_timeout_ms=100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE marker (n INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError):
            asyncio.run(database.run_write(_insert_marker))
        holder.execute("COMMIT")
        assert holder.execute("SELECT count(*) FROM marker").fetchone() == (0,)
    finally:
        holder.close()
        database.dispose()


def test_sqlite_inline_write_rolls_back_on_error(tmp_path: Path) -> None:
    """A unit of work that fails leaves nothing behind, inline as in a thread."""
    database, _ = _sqlite_database(tmp_path, busy_timeout_ms=1000)

    def fail_after_writing(conn: Connection) -> None:
        _insert_marker(conn)
        raise RuntimeError("boom")

    try:
        asyncio.run(database.run_write(_insert_marker))
        with pytest.raises(RuntimeError):
            asyncio.run(database.run_write(fail_after_writing))
        with database.snapshot() as conn:
            assert conn.execute(text("SELECT count(*) FROM marker")).scalar_one() == 1
    finally:
        database.dispose()


def test_a_sqlite_server_process_loads_no_unused_heavy_modules(tmp_path: Path) -> None:
    """Resident memory: a SQLite server needs neither psycopg nor httpx (Kratos only), and
    a serving process never loads Alembic (`mo-server run` migrates in a child)."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    probe = (
        "import sys\n"
        "from mo_local.server import ServerSettings, create_app\n"
        "from mo_local.server.allocator import release_large_buffers\n"
        f"create_app(ServerSettings(database_url={url!r}))\n"
        "print(sorted(m for m in ('alembic', 'httpx', 'psycopg') if m in sys.modules))\n"
        "print(release_large_buffers())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded, tuned = result.stdout.split("\n")[:2]
    assert loaded == "[]"
    assert tuned == str(sys.platform.startswith("linux"))


def test_mo_server_run_freezes_the_startup_heap_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mo-server run` builds the app, then moves everything alive out of the garbage
    collector's reach before uvicorn serves, so full collections stay short."""
    from mo_local.server import cli

    frozen_when_serving: list[int] = []

    def serve(app: object, **_options: object) -> None:
        assert app is not None
        frozen_when_serving.append(gc.get_freeze_count())

    monkeypatch.setattr(cli.uvicorn, "run", serve)
    monkeypatch.setattr(cli, "migrate_in_child", lambda _url, _level: 0)
    for name in ("MO_DATABASE_URL", "MO_SERVER_LOG_LEVEL", "MO_SERVER_AUTH_MODE"):
        monkeypatch.setenv(name, "restored after the test")  # `main` sets some of them
        monkeypatch.delenv(name)
    gc.unfreeze()
    try:
        assert cli.main(["run", "--database", f"sqlite:///{tmp_path / 'server.db'}"]) == 0
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
    assert len(frozen_when_serving) == 1
    assert frozen_when_serving[0] > 10_000  # the app, its framework and drivers


def test_freeze_startup_heap_collects_garbage_first() -> None:
    """Unreachable cycles alive at the freeze are collected, not frozen for good."""

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    try:
        garbage = Cycle()
        gone = weakref.ref(garbage)
        del garbage  # a cycle nothing refers to: only the collector frees it
        assert gone() is not None
        frozen = freeze_startup_heap()
        assert gone() is None
        assert frozen == gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_pull_pages_agree_with_their_head_while_pushes_land(
    alice: Api, server: str, database_url: str
) -> None:
    """A pull reads its page and the head from one snapshot, also while another client
    pushes: the page is gapless from `since`, never passes the head, and a page
    without `has_more` ends exactly at the head."""
    store = alice.claim()
    stop = threading.Event()
    pushed: list[int] = []

    def pusher() -> None:
        with Api(server) as other:
            other.token = alice.token
            head = 0
            while not stop.is_set() and head < 400:
                response = other.push(store, head, [random_record(8) for _ in range(3)])
                assert response.status_code == 200, response.text
                head = response.json()["head"]
                pushed.append(head)

    thread = threading.Thread(target=pusher)
    thread.start()
    try:
        pulls = 0
        while thread.is_alive() or pulls < 5:
            since = pulls % 7
            body = alice.pull(store, since=since, limit=5).json()
            seqs = [record["seq"] for record in body["records"]]
            assert seqs == list(range(since + 1, since + 1 + len(seqs)))
            assert all(seq <= body["head"] for seq in seqs)
            if not body["has_more"]:
                # Nothing after the page: it ends at the head (or the head is behind since).
                assert seqs[-1] == body["head"] if seqs else body["head"] <= since
            pulls += 1
    finally:
        stop.set()
        thread.join(timeout=60)
    assert pushed and pushed[-1] == len(alice.pull_all(store))
