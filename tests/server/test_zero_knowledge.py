"""Zero knowledge: the server database holds ids, sequences, sizes, server times, opaque bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import MetaData, create_engine, select

from .helpers import Api, b64, random_record

EXPECTED_COLUMNS = {
    "accounts": {"id", "email", "password_hash", "created_at"},
    "sessions": {"token_sha256", "account_id", "expires_at"},
    "stores": {
        "store_id",
        "owner_account_id",
        "head",
        "vault_blob",
        "vault_revision",
        "created_at",
    },
    "records": {"store_id", "seq", "event_id", "record", "received_at"},
    # Login throttle state: a digest of (email, client address), counts and server times.
    "login_attempts": {"key_sha256", "attempts", "last_attempt_at", "locked_until"},
    "alembic_version": {"version_num"},
}


def test_inv006_inv016_server_dump_has_only_opaque_records_and_routing_columns(
    alice: Api, database_url: str
) -> None:
    """INV-006/INV-016: after pushes, every table of the server database has exactly the
    columns of the design — no event type, aggregate, version or client timestamp column —
    and the record column holds the pushed bytes untouched."""
    store = alice.claim()
    batch = [random_record(64) for _ in range(5)]
    assert alice.push(store, 0, batch).status_code == 200
    vault = b"opaque vault header"
    alice.client.put(
        f"/v1/stores/{store}/vault",
        json={"expected_revision": None, "revision": 1, "vault": b64(vault)},
        headers=alice.auth,
    )

    engine = create_engine(database_url)
    reflected = MetaData()
    reflected.reflect(engine)
    dump: dict[str, list[dict[str, object]]] = {}
    with engine.connect() as conn:
        for name, table in reflected.tables.items():
            dump[name] = [dict(row._mapping) for row in conn.execute(select(table))]
    engine.dispose()

    assert {name: set(table.columns.keys()) for name, table in reflected.tables.items()} == (
        EXPECTED_COLUMNS
    )
    ours = [
        row
        for row in dump["records"]
        if str(row["store_id"]).replace("-", "") == store.replace("-", "")
    ]
    assert sorted((row["seq"], bytes(row["record"])) for row in ours) == [  # type: ignore[call-overload]
        (n, data) for n, (_, data) in enumerate(batch, 1)
    ]
    now = datetime.now(UTC)
    for row in ours:
        received = row["received_at"]
        assert isinstance(received, datetime)
        received = received if received.tzinfo else received.replace(tzinfo=UTC)
        assert now - timedelta(minutes=5) < received <= now + timedelta(seconds=5), "server time"
    store_rows = [
        r for r in dump["stores"] if str(r["store_id"]).replace("-", "") == store.replace("-", "")
    ]
    assert len(store_rows) == 1 and bytes(store_rows[0]["vault_blob"]) == vault  # type: ignore[arg-type]
    assert store_rows[0]["head"] == 5


def test_inv006_openapi_speaks_only_accounts_stores_records_and_sequences(server: str) -> None:
    """INV-006/INV-016: no field of the API names a domain concept; records are opaque strings."""
    document = httpx.get(f"{server}/openapi.json").json()
    for word in ("goal", "project", "milestone", "aggregate", "event_type"):
        assert word not in str(document).lower(), word
    fields = {
        prop
        for name, schema in document["components"]["schemas"].items()
        if name not in ("Problem", "ValidationError", "HTTPValidationError")
        for prop in schema.get("properties", {})
    }
    assert fields == {
        "account_id",
        "token",
        "email",
        "password",
        "store_id",
        "head",
        "vault_revision",
        "revision",
        "expected_revision",
        "vault",
        "expected_head",
        "records",
        "event_id",
        "record",
        "seq",
        "assigned",
        "has_more",
        "status",
    }
    schemas = document["components"]["schemas"]
    assert schemas["PushRecord"]["properties"]["record"]["type"] == "string"
