"""The object graph one app instance runs on, and the FastAPI dependencies that reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from mo_local.server.auth import Accounts, Authenticator, Principal
from mo_local.server.database import Database
from mo_local.server.notify import PostgresPushListener, StoreSignals
from mo_local.server.observability import Metrics, RequestFacts, facts_of
from mo_local.server.record_log import RecordLog
from mo_local.server.settings import ServerSettings
from mo_local.server.storage import Credentials, Storage


@dataclass(frozen=True)
class ServerContext:
    """Everything an app instance owns; built by `create_app`, kept on `app.state`."""

    settings: ServerSettings
    database: Database
    storage: Storage
    record_log: RecordLog
    authenticator: Authenticator
    accounts: Accounts | None
    signals: StoreSignals
    listener: PostgresPushListener | None
    metrics: Metrics


async def server_context(request: Request) -> ServerContext:
    """The context of the app serving this request."""
    context = request.app.state.mo
    assert isinstance(context, ServerContext)
    return context


# Declared so the OpenAPI document names the scheme; the authenticator reads the header.
_bearer_scheme = HTTPBearer(auto_error=False, description="Session token from signup/login")


async def current_principal(
    request: Request,
    context: Annotated[ServerContext, Depends(server_context)],
    _credentials: Annotated[object, Depends(_bearer_scheme)],
) -> Principal:
    """The authenticated account, or 401 `unauthorized`."""
    return await context.authenticator.authenticate(request)


@dataclass(frozen=True)
class RecordAccess:
    """What push and pull take from their request: the app's context, the credentials
    (verified inside the operation's own statement) and the request's facts."""

    context: ServerContext
    credentials: Credentials
    facts: RequestFacts


async def record_access(
    request: Request,
    _credentials: Annotated[object, Depends(_bearer_scheme)],
) -> RecordAccess:
    """The context, credentials that the operation verifies in its own statement (401
    at once when the request carries none) and the request's facts, in ONE dependency:
    push and pull run under load, and FastAPI spends ~15-20 us of CPU resolving each
    dependency of a request. The bearer scheme stays a dependency of its own, so the
    OpenAPI document declares it."""
    context = request.app.state.mo
    assert isinstance(context, ServerContext)
    credentials = await context.authenticator.credentials(request)
    return RecordAccess(context, credentials, facts_of(request))


Context = Annotated[ServerContext, Depends(server_context)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentAccess = Annotated[RecordAccess, Depends(record_access)]
