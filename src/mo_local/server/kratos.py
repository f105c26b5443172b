"""Optional identity provider: trust an Ory Kratos session via `GET /sessions/whoami`.

The incoming cookie, `X-Session-Token` or bearer token is forwarded to Kratos; the
Kratos identity id (a UUID) becomes the account id, created on first sight. The
server still never sees keys: identity is not key escrow (INV-017).
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy
from uuid import UUID

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mo_local.server.auth import Principal, bearer_token
from mo_local.server.errors import IdentityProviderUnavailable, Unauthorized
from mo_local.server.storage import Credentials, Storage


class KratosAuthenticator:
    """Authenticates requests by asking Kratos who the session belongs to."""

    def __init__(
        self,
        kratos_url: str,
        storage: Storage,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._storage = storage
        # A jar that accepts nothing: a Set-Cookie from Kratos for one user must never
        # ride along on the next user's whoami call.
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.AsyncClient(
            base_url=kratos_url.rstrip("/"),
            transport=transport,
            timeout=timeout_seconds,
            cookies=no_cookies,
            follow_redirects=False,
        )

    async def authenticate(self, request: Request) -> Principal:
        """The account of an active Kratos session; `Unauthorized` otherwise."""
        headers = {"Accept": "application/json"}
        cookie = request.headers.get("cookie")
        token = request.headers.get("x-session-token") or bearer_token(request)
        if cookie:
            headers["Cookie"] = cookie
        if token:
            headers["X-Session-Token"] = token
        if not cookie and not token:
            raise Unauthorized()
        try:
            response = await self._client.get("/sessions/whoami", headers=headers)
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable() from exc
        if response.status_code in (401, 403):
            raise Unauthorized()
        if response.status_code != 200:
            raise IdentityProviderUnavailable()
        account_id = _identity_id(response)
        await run_in_threadpool(self._storage.ensure_external_account, account_id)
        return Principal(account_id)

    async def credentials(self, request: Request) -> Credentials:
        """The account of an active Kratos session, verified now."""
        return Credentials(account_id=(await self.authenticate(request)).account_id)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _identity_id(response: httpx.Response) -> UUID:
    try:
        session = response.json()
    except ValueError as exc:
        raise IdentityProviderUnavailable() from exc
    if not isinstance(session, dict) or session.get("active") is not True:
        raise Unauthorized()
    identity = session.get("identity")
    identity_id = identity.get("id") if isinstance(identity, dict) else None
    if not isinstance(identity_id, str):
        raise IdentityProviderUnavailable()
    try:
        return UUID(identity_id)
    except ValueError as exc:
        raise IdentityProviderUnavailable() from exc
