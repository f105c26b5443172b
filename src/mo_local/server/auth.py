"""Built-in accounts: signup, login, logout and bearer-token sessions.

Tokens are 32 random bytes (urlsafe text) shown once; the database keeps only their
SHA-256, so a dump of the sessions table grants nothing. Authentication identifies
an account and never grants decryption (INV-017).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mo_local.server.errors import InvalidCredentials, Unauthorized
from mo_local.server.passwords import PasswordVerifier
from mo_local.server.storage import Credentials, Storage
from mo_local.server.throttle import LoginThrottle


@dataclass(frozen=True)
class Principal:
    """The authenticated account of a request."""

    account_id: UUID


@dataclass(frozen=True)
class SessionGrant:
    """A new session: the token travels to the client once."""

    account_id: UUID
    token: str = field(repr=False)


class Authenticator(Protocol):
    """Turns a request's credentials into a `Principal` or raises `Unauthorized`."""

    async def authenticate(self, request: Request) -> Principal:
        """The request's account."""
        ...

    async def credentials(self, request: Request) -> Credentials:
        """The request's credentials, verified as far as possible without the database."""
        ...


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, if well-formed."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return None
    return token


def token_digest(token: str) -> bytes:
    """SHA-256 of a token: the only form in which tokens are stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


class BuiltinAuthenticator:
    """Bearer tokens issued by this server."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def authenticate(self, request: Request) -> Principal:
        """The account of a live session; `Unauthorized` otherwise."""
        credentials = await self.credentials(request)
        account_id = await run_in_threadpool(self._storage.verified_account, credentials)
        return Principal(account_id)

    async def credentials(self, request: Request) -> Credentials:
        """The digest of a well-formed bearer token; `Unauthorized` without one."""
        token = bearer_token(request)
        if token is None:
            raise Unauthorized()
        return Credentials(token_sha256=token_digest(token))


class Accounts:
    """Signup, login and logout of built-in accounts."""

    def __init__(
        self,
        storage: Storage,
        passwords: PasswordVerifier,
        throttle: LoginThrottle,
        token_ttl: timedelta,
    ) -> None:
        self._storage = storage
        self._passwords = passwords
        self._throttle = throttle
        self._ttl = token_ttl

    async def signup(self, email: str, password: str) -> SessionGrant:
        """Create an account and its first session; `EmailTaken` if the email is in use."""
        password_hash = await run_in_threadpool(self._passwords.hash, password)
        account_id = await run_in_threadpool(
            self._storage.create_account, normalize_email(email), password_hash
        )
        return await self._new_session(account_id)

    async def login(self, email: str, password: str, client: str) -> SessionGrant:
        """A new session for correct credentials; throttled; one answer for every failure."""
        email = normalize_email(email)
        await run_in_threadpool(self._throttle.begin, email, client)
        found = await run_in_threadpool(self._storage.find_login, email)
        stored_hash = None if found is None else found.password_hash
        ok = await run_in_threadpool(self._passwords.verify, stored_hash, password)
        if found is None or stored_hash is None or not ok:
            raise InvalidCredentials()
        await run_in_threadpool(self._throttle.succeeded, email, client)
        if self._passwords.needs_rehash(stored_hash):
            new_hash = await run_in_threadpool(self._passwords.hash, password)
            await run_in_threadpool(self._storage.replace_password_hash, found.account_id, new_hash)
        return await self._new_session(found.account_id)

    async def logout(self, token: str) -> None:
        """Revoke the session of a token."""
        await run_in_threadpool(self._storage.delete_session, token_digest(token))

    async def _new_session(self, account_id: UUID) -> SessionGrant:
        token = secrets.token_urlsafe(32)
        expires_at = self._storage.now() + self._ttl
        await run_in_threadpool(
            self._storage.create_session, account_id, token_digest(token), expires_at
        )
        return SessionGrant(account_id, token)
