"""Ory Kratos mode against a small fake Kratos HTTP server on loopback (the one permitted fake)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .conftest import StartServer
from .helpers import Api, free_port, random_record, serve_in_thread


@dataclass
class FakeKratos:
    """Sessions by token; records the headers each whoami call received."""

    sessions: dict[str, tuple[str, bool]] = field(default_factory=dict)
    seen_cookies: list[str | None] = field(default_factory=list)
    broken: bool = False

    def add(self, *, active: bool = True) -> tuple[str, str]:
        """A new session token and its identity id."""
        token, identity = f"kratos-{uuid.uuid4().hex}", str(uuid.uuid4())
        self.sessions[token] = (identity, active)
        return token, identity

    async def whoami(self, request: Request) -> JSONResponse:
        cookie = request.headers.get("cookie")
        self.seen_cookies.append(cookie)
        if self.broken:
            return JSONResponse({"error": "boom"}, status_code=500)
        token = request.headers.get("x-session-token")
        if token is None and cookie and cookie.startswith("ory_kratos_session="):
            token = cookie.split("=", 1)[1]
        if token not in self.sessions:
            return JSONResponse({"error": {"code": 401}}, status_code=401)
        identity, active = self.sessions[token]
        response = JSONResponse(
            {"id": str(uuid.uuid4()), "active": active, "identity": {"id": identity, "traits": {}}}
        )
        # Kratos may refresh cookies; the server must not carry them to other users.
        response.set_cookie("ory_kratos_session", token)
        return response


@pytest.fixture
def kratos() -> Iterator[tuple[FakeKratos, str]]:
    fake = FakeKratos()
    app = Starlette(routes=[Route("/sessions/whoami", fake.whoami)])
    with serve_in_thread(app) as url:  # type: ignore[arg-type]
        yield fake, url


@pytest.fixture
def kratos_server(start_server: StartServer, kratos: tuple[FakeKratos, str]) -> str:
    return start_server(auth_mode="kratos", kratos_url=kratos[1])


def test_kratos_session_token_bearer_and_cookie_identify_the_same_account(
    kratos: tuple[FakeKratos, str], kratos_server: str
) -> None:
    fake, _ = kratos
    token, identity = fake.add()
    for headers in (
        {"X-Session-Token": token},
        {"Authorization": f"Bearer {token}"},
        {"Cookie": f"ory_kratos_session={token}"},
    ):
        response = httpx.get(f"{kratos_server}/v1/auth/whoami", headers=headers)
        assert response.status_code == 200, headers
        assert response.json() == {"account_id": identity}


def test_kratos_account_uses_stores_like_any_other(
    kratos: tuple[FakeKratos, str], kratos_server: str
) -> None:
    fake, _ = kratos
    token, _ = fake.add()
    other_token, _ = fake.add()
    with Api(kratos_server, token=token) as api, Api(kratos_server, token=other_token) as other:
        store = api.claim()
        record = random_record()
        assert api.push(store, 0, [record]).status_code == 200
        assert api.pull_all(store) == [(1, record[0], record[1])]
        assert other.pull(store).status_code == 404


def test_kratos_rejections(kratos: tuple[FakeKratos, str], kratos_server: str) -> None:
    fake, _ = kratos
    inactive, _ = fake.add(active=False)
    for headers in ({}, {"X-Session-Token": "unknown"}, {"X-Session-Token": inactive}):
        response = httpx.get(f"{kratos_server}/v1/stores", headers=headers)
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized"), headers
    fake.broken = True
    token, _ = fake.add()
    failed = httpx.get(f"{kratos_server}/v1/stores", headers={"X-Session-Token": token})
    assert (failed.status_code, failed.json()["code"]) == (503, "identity_provider_unavailable")


def test_kratos_unreachable_is_503(start_server: StartServer) -> None:
    base = start_server(auth_mode="kratos", kratos_url=f"http://127.0.0.1:{free_port()}")
    response = httpx.get(f"{base}/v1/auth/whoami", headers={"X-Session-Token": "x"})
    assert (response.status_code, response.json()["code"]) == (503, "identity_provider_unavailable")


def test_kratos_cookies_are_never_carried_to_another_request(
    kratos: tuple[FakeKratos, str], kratos_server: str
) -> None:
    fake, _ = kratos
    token, _ = fake.add()
    assert (
        httpx.get(
            f"{kratos_server}/v1/auth/whoami", headers={"Cookie": f"ory_kratos_session={token}"}
        ).status_code
        == 200
    )
    stranger = httpx.get(f"{kratos_server}/v1/auth/whoami", headers={"X-Session-Token": "nope"})
    assert stranger.status_code == 401
    assert fake.seen_cookies[-1] is None, "Kratos' Set-Cookie leaked into another user's call"


def test_builtin_account_routes_do_not_exist_in_kratos_mode(kratos_server: str) -> None:
    body = {"email": "a@b.example", "password": "long enough password"}
    for path in ("/v1/auth/signup", "/v1/auth/login"):
        assert httpx.post(f"{kratos_server}{path}", json=body).status_code == 404
    paths = httpx.get(f"{kratos_server}/openapi.json").json()["paths"]
    assert "/v1/auth/signup" not in paths and "/v1/auth/whoami" in paths
