"""The server's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Zero knowledge (INV-016): nothing here can hold an event type, aggregate, version or
client timestamp — a record is opaque bytes keyed by store, sequence and event id.
Alembic migrations under `migrations/versions` must produce exactly this metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Uuid(as_uuid=True), primary_key=True),
    # NULL for identities that live in Ory Kratos.
    Column("email", String(320), nullable=True, unique=True),
    Column("password_hash", String(512), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_sha256", LargeBinary(32), primary_key=True),
    Column(
        "account_id",
        Uuid(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index(None, "account_id"),
)

stores = Table(
    "stores",
    metadata,
    Column("store_id", Uuid(as_uuid=True), primary_key=True),
    Column(
        "owner_account_id",
        Uuid(as_uuid=True),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("head", BigInteger, nullable=False),
    Column("vault_blob", LargeBinary, nullable=True),
    Column("vault_revision", BigInteger, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "owner_account_id"),
)

records = Table(
    "records",
    metadata,
    Column(
        "store_id",
        Uuid(as_uuid=True),
        ForeignKey("stores.store_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", Uuid(as_uuid=True), nullable=False),
    Column("record", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("store_id", "seq"),
    UniqueConstraint("store_id", "event_id"),
)

# Login throttle state, shared by every server process on the database. The key is the
# SHA-256 of "email NUL client address": no email or address is stored in clear.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("key_sha256", LargeBinary(32), primary_key=True),
    Column("attempts", BigInteger, nullable=False),
    Column("last_attempt_at", DateTime(timezone=True), nullable=False),
    # NULL while the key is not locked out.
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Index(None, "last_attempt_at"),
)
