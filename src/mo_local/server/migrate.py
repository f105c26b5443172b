"""Schema upgrades with Alembic, run programmatically (`mo-server migrate` and at `run` start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from mo_local.server.database import Database

_SCRIPT_LOCATION = Path(__file__).parent / "migrations"
# Arbitrary constant: serialises concurrent upgrades from several starting processes.
_PG_MIGRATION_LOCK = 0x6D6F5F6D6967


def upgrade(database_url: str) -> str | None:
    """Upgrade the database to the newest schema; safe to run from several processes at once."""
    database = Database(database_url)
    try:
        with database.write() as conn:
            if database.is_postgres:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            command.upgrade(_config(conn), "head")
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        database.dispose()


def current_revision(database_url: str) -> str | None:
    """The schema revision a database is at (None when it was never migrated)."""
    database = Database(database_url)
    try:
        with database.snapshot() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        database.dispose()


def head_revision() -> str | None:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(None)).get_current_head()


def _config(conn: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    return config
