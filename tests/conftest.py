"""Shared fixtures: a fresh PostgreSQL database per test session.

In CI (CI=true) an unreachable PostgreSQL server is a failure; on a laptop without
one, the tests that need it skip with a clear reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("MO_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A libpq URL of a database created for this test session and dropped afterwards."""
    yield from _database()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A libpq URL of a database created for one test and dropped afterwards."""
    yield from _database()


def _database() -> Iterator[str]:
    import psycopg

    admin = _admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"PostgreSQL is required in CI but unreachable at {urlsplit(admin).netloc}: {exc}"
            )
        pytest.skip(f"PostgreSQL unreachable at {urlsplit(admin).netloc}; set MO_TEST_DATABASE_URL")
    name = f"mo_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def postgres_sqlalchemy_url(postgres_url: str) -> str:
    """The session database as an SQLAlchemy URL using psycopg 3."""
    return postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
