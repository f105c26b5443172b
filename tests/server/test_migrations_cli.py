"""Alembic migrations produce exactly the schema module; `mo-server migrate` and `run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from mo_local.server.database import Database
from mo_local.server.migrate import _config, current_revision, head_revision, upgrade
from mo_local.server.schema import metadata
from mo_local.server.settings import sqlalchemy_url

from .helpers import ServerProcess, free_port, mo_server_processes, wait_until


def test_migrations_match_the_schema_module(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []
    assert current_revision(database_url) == head_revision() == "0004"


def test_upgrade_is_idempotent(database_url: str) -> None:
    assert upgrade(database_url) == "0004"
    assert upgrade(database_url) == "0004"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of this test alone: a SQLite file or a new PostgreSQL database."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'fresh.db'}"


def test_migration_0004_login_attempts_downgrades_and_upgrades_again(
    fresh_database_url: str,
) -> None:
    """0004 adds `login_attempts` (with its index); its downgrade drops exactly that."""
    assert upgrade(fresh_database_url) == "0004"
    database = Database(fresh_database_url)
    try:
        with database.write() as conn:
            tables = set(inspect(conn).get_table_names())
            assert {"accounts", "sessions", "stores", "records", "login_attempts"} <= tables
            indexes = {ix["name"] for ix in inspect(conn).get_indexes("login_attempts")}
            assert indexes == {"ix_login_attempts_last_attempt_at"}
            command.downgrade(_config(conn), "0003")
            after = set(inspect(conn).get_table_names())
            assert "login_attempts" not in after
            assert {"accounts", "sessions", "stores", "records"} <= after
        assert current_revision(fresh_database_url) == "0003"
        assert upgrade(fresh_database_url) == "0004"
        engine = create_engine(sqlalchemy_url(fresh_database_url))
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        engine.dispose()
    finally:
        database.dispose()


def test_plain_postgresql_urls_use_psycopg() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


def _mo_server(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mo_local.server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_migrate_command_uses_flag_env_and_default_location(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MO_DATABASE_URL"}
    flagged = tmp_path / "flag.db"
    assert _mo_server("migrate", "--database", f"sqlite:///{flagged}", env=env).returncode == 0
    from_env = tmp_path / "env.db"
    result = _mo_server("migrate", env={**env, "MO_DATABASE_URL": f"sqlite:///{from_env}"})
    assert result.returncode == 0, result.stderr
    default = _mo_server("migrate", env={**env, "XDG_DATA_HOME": str(tmp_path / "data")})
    assert default.returncode == 0, default.stderr
    default_db = tmp_path / "data" / "mo-server" / "server.db"
    for path in (flagged, from_env, default_db):
        engine = create_engine(f"sqlite:///{path}")
        assert {"accounts", "sessions", "stores", "records"} <= set(
            inspect(engine).get_table_names()
        )
        engine.dispose()


def test_migrate_refuses_unsupported_urls(tmp_path: Path) -> None:
    result = _mo_server("migrate", "--database", "mysql://x@y/z", env=dict(os.environ))
    assert result.returncode == 2
    assert result.stderr.startswith("error:")


def test_run_with_several_workers_serves_from_each_worker(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "workers.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mo_local.server.cli",
                "run",
                "--database",
                f"sqlite:///{tmp_path / 'w.db'}",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:

        def healthy() -> bool:
            assert process.poll() is None, server.log()
            try:
                return httpx.get(f"{server.base_url}/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "the workers to serve")
        wait_until(
            lambda: server.log().count("Application startup complete") >= 2, 60, "both workers"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_two_processes_migrating_one_fresh_database_at_once(tmp_path: Path) -> None:
    """Both start, both upgrade the same new file, both serve."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    with mo_server_processes(url, 2, tmp_path) as servers:
        assert all(httpx.get(f"{s.base_url}/v1/health").status_code == 200 for s in servers)
