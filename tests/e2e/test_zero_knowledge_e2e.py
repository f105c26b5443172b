"""Zero knowledge end to end (issue 4 acceptance 5): real `mo` devices, a real server.

After a scenario whose goals, projects and milestones carry canary strings, a full
dump of the server database (SQLite and PostgreSQL) holds no canary, no event type
name, no aggregate id and no aggregate version column; the OpenAPI document and the
server's DEBUG logs show only opaque records (INV-006, INV-016, INV-017).
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import httpx
from e2e_support import Device, Server, build_scenario

from mo_local.domain.registry import EVENT_TYPES

CANARY = "ZKCANARY7e1f"
ALLOWED_COLUMNS = {
    "accounts": {"id", "email", "password_hash", "created_at"},
    "sessions": {"token_sha256", "account_id", "expires_at", "created_at"},
    "stores": {"store_id", "owner_account_id", "head", "vault_blob", "vault_revision",
               "created_at", "updated_at"},
    "records": {"store_id", "seq", "event_id", "record", "size", "received_at"},
    # Login throttle state: a digest of (email, client address), counts, server times.
    "login_attempts": {"key_sha256", "attempts", "last_attempt_at", "locked_until"},
}


def _dump(server: Server) -> tuple[dict[str, set[str]], bytes]:
    """Every table's columns and every row of the server database, as bytes."""
    url = server.database_url
    columns: dict[str, set[str]] = {}
    chunks: list[bytes] = []
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(path)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                cur = conn.execute(f'SELECT * FROM "{table}"')
                columns[table] = {d[0] for d in cur.description}
                for row in cur:
                    chunks.extend(_cell_bytes(c) for c in row)
        finally:
            conn.close()
        for suffix in ("", "-wal"):
            p = Path(path + suffix)
            if p.exists():
                chunks.append(p.read_bytes())
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            for table in tables:
                cur = conn.execute(f'SELECT * FROM "{table}"')
                assert cur.description is not None
                columns[table] = {d.name for d in cur.description}
                for row in cur:
                    chunks.extend(_cell_bytes(c) for c in row)
    return columns, b"\n".join(chunks)


def _cell_bytes(cell: object) -> bytes:
    if isinstance(cell, bytes | bytearray | memoryview):
        return bytes(cell)
    return str(cell).encode()


def _forms(text: str) -> list[bytes]:
    raw = text.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def test_inv006_inv016_server_learns_nothing_from_a_real_scenario(
    server: Server, tmp_path: Path
) -> None:
    """INV-006/INV-016/INV-017: canaries, types, ids, versions never reach the server."""
    d1 = Device(tmp_path / "d1", "zk passphrase one", "zk account pw 1", "zk@example.org")
    d2 = Device(tmp_path / "d2", "zk passphrase one", "zk account pw 1", "zk@example.org")
    d1.init()
    ids = build_scenario(d1, CANARY)
    d1.ok("remote", "signup", server.url, "--email", d1.email)
    d1.ok("sync")
    d2.ok("join", server.url, "--email", d2.email)
    d2.ok("goal", "edit", ids["other"], "--summary", f"{CANARY} edited on device 2")
    d2.ok("sync")
    d1.ok("sync")
    assert d1.views() == d2.views()

    columns, dump = _dump(server)
    for table, allowed in ALLOWED_COLUMNS.items():
        if table in columns:
            assert columns[table] <= allowed, f"unexpected columns in {table}: {columns[table]}"
    assert set(columns) <= {*ALLOWED_COLUMNS, "alembic_version"}
    assert columns.get("alembic_version", {"version_num"}) == {"version_num"}
    forbidden = [CANARY, *ids.values(), *EVENT_TYPES, "goal", "project", "milestone",
                 "Health", "2027-04", "completed", "zk passphrase one"]
    for needle in forbidden:
        for form in _forms(needle):
            assert form not in dump, f"{needle!r} found in the server database"

    # The server's own vocabulary, and its DEBUG log, carry nothing of the domain.
    openapi = httpx.get(f"{server.url}/openapi.json", timeout=10).text.lower()
    for word in ("goal", "project", "milestone", "aggregate", "event_type", "slice"):
        assert word not in openapi
    log = server.log()
    assert "record" in log.lower() or "push" in log.lower(), "the log must have been written"
    for needle in [CANARY, *ids.values(), *EVENT_TYPES, "zk account pw 1", "zk passphrase one"]:
        assert needle not in log

    # Authentication never grants decryption (INV-017): with the account alone, a third
    # "device" gets only ciphertext and a vault it cannot open without the passphrase.
    thief = Device(tmp_path / "thief", "a wrong passphrase", "zk account pw 1", "zk@example.org")
    stolen = thief("join", server.url, "--email", thief.email, "--json")
    assert stolen.code == 6
    assert not (thief.home / "mo.db").exists()
