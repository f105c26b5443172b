"""`/v1/auth/*`: built-in signup, login, logout, and whoami for every identity provider."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mo_local.server.auth import Accounts, bearer_token
from mo_local.server.context import Context, CurrentPrincipal, ServerContext
from mo_local.server.errors import Unauthorized
from mo_local.server.models import LoginRequest, SessionGranted, SignupRequest, WhoAmI
from mo_local.server.problems import problem_responses


def auth_router(*, builtin: bool) -> APIRouter:
    """The auth routes; signup, login and logout exist only with built-in accounts."""
    router = APIRouter(prefix="/v1/auth", tags=["auth"])
    if builtin:
        _add_builtin_routes(router)

    @router.get(
        "/whoami",
        response_model=WhoAmI,
        responses=problem_responses(401, 503),
        summary="The authenticated account",
    )
    async def whoami(principal: CurrentPrincipal) -> WhoAmI:
        """The account of the presented credentials."""
        return WhoAmI(account_id=principal.account_id)

    return router


def _accounts(context: ServerContext) -> Accounts:
    assert context.accounts is not None
    return context.accounts


def _add_builtin_routes(router: APIRouter) -> None:
    @router.post(
        "/signup",
        status_code=201,
        response_model=SessionGranted,
        responses=problem_responses(400, 409, 413, 422, 503),
        summary="Create an account and its first session",
    )
    async def signup(body: SignupRequest, context: Context) -> SessionGranted:
        """Create an account; the answer carries its first token."""
        grant = await _accounts(context).signup(body.email, body.password)
        return SessionGranted(account_id=grant.account_id, token=grant.token)

    @router.post(
        "/login",
        response_model=SessionGranted,
        responses=problem_responses(400, 401, 413, 422, 429, 503),
        summary="Open a session (throttled after repeated failures)",
    )
    async def login(body: LoginRequest, request: Request, context: Context) -> SessionGranted:
        """Exchange email and password for a new token."""
        client = request.client.host if request.client else "unknown"
        grant = await _accounts(context).login(body.email, body.password, client)
        return SessionGranted(account_id=grant.account_id, token=grant.token)

    @router.post(
        "/logout",
        status_code=204,
        response_class=Response,
        responses=problem_responses(401, 413, 503),
        summary="Revoke the session of the bearer token",
    )
    async def logout(request: Request, context: Context, _principal: CurrentPrincipal) -> Response:
        """Revoke the presented token."""
        token = bearer_token(request)
        if token is None:
            raise Unauthorized()
        await _accounts(context).logout(token)
        return Response(status_code=204)
