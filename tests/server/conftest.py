"""Server test fixtures: a test taking `database_url` runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from mo_local.server import create_app
from mo_local.server.migrate import upgrade

from .helpers import Api, make_settings, serve_in_thread


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_sqlalchemy_url: str) -> str:
    """The session's PostgreSQL database, upgraded to the newest schema once."""
    upgrade(postgres_sqlalchemy_url)
    return postgres_sqlalchemy_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated server database: a fresh SQLite file, or the shared PostgreSQL database.

    Tests on PostgreSQL share one database, so they use fresh accounts and store ids.
    """
    if request.param == "postgres":
        url: str = request.getfixturevalue("migrated_postgres_url")
        return url
    path = tmp_path_factory.mktemp("server-db") / "server.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


StartServer = Callable[..., str]


@pytest.fixture
def start_server(database_url: str) -> Iterator[StartServer]:
    """Start a server (real uvicorn socket) on the test database with setting overrides."""
    with ExitStack() as stack:

        def start(**overrides: object) -> str:
            app = create_app(make_settings(database_url, **overrides))
            return stack.enter_context(serve_in_thread(app))

        yield start


@pytest.fixture
def server(start_server: StartServer) -> str:
    """The base URL of a server with default test settings."""
    return start_server()


@pytest.fixture
def new_api(server: str) -> Iterator[Callable[[], Api]]:
    """Make API clients of `server`; closed at the end of the test."""
    made: list[Api] = []

    def make() -> Api:
        api = Api(server)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def alice(new_api: Callable[[], Api]) -> Api:
    """A signed-up account."""
    return new_api().signup()


@pytest.fixture
def bob(new_api: Callable[[], Api]) -> Api:
    """Another signed-up account."""
    return new_api().signup()
