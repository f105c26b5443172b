"""Initial schema: accounts, sessions, stores, records.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the four tables of the zero-knowledge server."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("account_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_sessions"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_sessions_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_sessions_account_id", "sessions", ["account_id"])
    op.create_table(
        "stores",
        sa.Column("store_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("owner_account_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("head", sa.BigInteger(), nullable=False),
        sa.Column("vault_blob", sa.LargeBinary(), nullable=True),
        sa.Column("vault_revision", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name="pk_stores"),
        sa.ForeignKeyConstraint(
            ["owner_account_id"],
            ["accounts.id"],
            name="fk_stores_owner_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_stores_owner_account_id", "stores", ["owner_account_id"])
    op.create_table(
        "records",
        sa.Column("store_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Uuid(as_uuid=True), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "seq", name="pk_records"),
        sa.UniqueConstraint("store_id", "event_id", name="uq_records_store_id_event_id"),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.store_id"],
            name="fk_records_store_id_stores",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop everything (only for development databases)."""
    op.drop_table("records")
    op.drop_table("stores")
    op.drop_table("sessions")
    op.drop_table("accounts")
