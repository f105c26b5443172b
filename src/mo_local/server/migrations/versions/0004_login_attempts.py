"""Login throttle state in the database: the `login_attempts` table.

Revision ID: 0004
Revises: 0003

Until now each server process counted login attempts in its own memory, so N processes
on one database gave a guesser N times the budget. One row per throttle key — the
SHA-256 of "email NUL client address", never the email itself — holds the attempt
count, the time of the last attempt and the end of the current lockout, so every
process sharing the database enforces one budget. Rows older than the throttle's
forget-after time are deleted by the server as it goes (indexed by last attempt).

Same table on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `login_attempts` and its index on the last attempt time."""
    op.create_table(
        "login_attempts",
        sa.Column("key_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_sha256", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_last_attempt_at", "login_attempts", ["last_attempt_at"])


def downgrade() -> None:
    """Drop the table: throttle state is transient, nothing of value is lost."""
    op.drop_index("ix_login_attempts_last_attempt_at", table_name="login_attempts")
    op.drop_table("login_attempts")
