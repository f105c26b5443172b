"""The app factory: builds one self-contained FastAPI app from `ServerSettings`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from mo_local.server.auth import Accounts, Authenticator, BuiltinAuthenticator
from mo_local.server.body_limit import BodyLimitMiddleware
from mo_local.server.context import ServerContext
from mo_local.server.database import Database
from mo_local.server.notify import PostgresPushListener, StoreSignals
from mo_local.server.observability import Metrics, ObservabilityMiddleware
from mo_local.server.passwords import PasswordVerifier
from mo_local.server.problems import (
    ContainUnexpectedErrors,
    install_problem_handlers,
    install_problem_schema,
)
from mo_local.server.record_log import RecordLog
from mo_local.server.routes import auth, operations, records, stores
from mo_local.server.settings import ServerSettings, libpq_url
from mo_local.server.storage import Storage
from mo_local.server.throttle import LoginThrottle

if TYPE_CHECKING:
    from mo_local.server.kratos import KratosAuthenticator

API_VERSION = "1.0.0"


def create_app(settings: ServerSettings) -> FastAPI:
    """A new server app; everything it uses hangs off `app.state.mo` (no globals)."""
    database = Database(
        settings.database_url,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        postgres_connections=settings.postgres_connections,
    )
    storage = Storage(database)
    signals = StoreSignals()
    listener = (
        PostgresPushListener(libpq_url(settings.database_url), settings.notify_channel, signals)
        if database.is_postgres
        else None
    )
    kratos: KratosAuthenticator | None = None
    accounts: Accounts | None = None
    authenticator: Authenticator
    if settings.auth_mode == "kratos":
        from mo_local.server.kratos import KratosAuthenticator  # loads httpx

        assert settings.kratos_url is not None
        kratos = KratosAuthenticator(
            settings.kratos_url,
            storage,
            transport=settings.kratos_transport,
            timeout_seconds=settings.kratos_timeout_seconds,
        )
        authenticator = kratos
    else:
        authenticator = BuiltinAuthenticator(storage)
        accounts = Accounts(
            storage,
            PasswordVerifier(settings.password_hashing),
            LoginThrottle(settings.login_throttle, database, clock=storage.now),
            settings.token_ttl,
        )
    context = ServerContext(
        settings=settings,
        database=database,
        storage=storage,
        record_log=RecordLog(database, storage, notify_channel=settings.notify_channel),
        authenticator=authenticator,
        accounts=accounts,
        signals=signals,
        listener=listener,
        metrics=Metrics(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if listener is not None:
            await listener.ensure_started()
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            if kratos is not None:
                await kratos.aclose()
            await database.aclose()

    app = FastAPI(
        title="MO Local sync server",
        version=API_VERSION,
        description="Zero-knowledge sync: accounts, stores, opaque records, sequences.",
        lifespan=lifespan,
    )
    app.state.mo = context
    install_problem_handlers(app)
    install_problem_schema(app)
    app.include_router(operations.router)
    app.include_router(auth.auth_router(builtin=accounts is not None))
    app.include_router(stores.router)
    app.include_router(records.router)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.limits.max_body_bytes)
    app.add_middleware(ContainUnexpectedErrors)
    # Added last, so outermost: 413s from the body limit are timed and logged too.
    app.add_middleware(ObservabilityMiddleware, metrics=context.metrics)
    return app
