"""Built-in accounts: signup, login, logout, whoami, expiry and throttling."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import create_engine, select, update

from mo_local.server import LoginThrottleSettings
from mo_local.server.schema import accounts, sessions

from .conftest import StartServer
from .helpers import PASSWORD, Api, new_email


def test_signup_login_whoami_logout(new_api: Callable[[], Api]) -> None:
    api = new_api()
    email = new_email()
    signup = api.client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert signup.status_code == 201
    account_id = signup.json()["account_id"]
    login = api.login(email.upper(), PASSWORD)  # emails compare case-insensitively
    assert login.status_code == 200
    assert login.json()["account_id"] == account_id
    token = login.json()["token"]
    assert token != signup.json()["token"] and len(token) >= 43
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/auth/whoami", headers=headers).json() == {"account_id": account_id}
    assert api.client.post("/v1/auth/logout", headers=headers).status_code == 204
    revoked = api.client.get("/v1/auth/whoami", headers=headers)
    assert (revoked.status_code, revoked.json()["code"]) == (401, "unauthorized")
    # The signup session is independent and still valid.
    signup_headers = {"Authorization": f"Bearer {signup.json()['token']}"}
    assert api.client.get("/v1/auth/whoami", headers=signup_headers).status_code == 200


def test_duplicate_email_is_409(new_api: Callable[[], Api]) -> None:
    api = new_api()
    email = new_email()
    api.signup(email)
    again = api.client.post("/v1/auth/signup", json={"email": email.upper(), "password": PASSWORD})
    assert (again.status_code, again.json()["code"]) == (409, "email_taken")


def test_wrong_password_and_unknown_email_get_the_same_answer(new_api: Callable[[], Api]) -> None:
    api = new_api()
    email = new_email()
    api.signup(email)
    wrong = api.login(email, "not the password")
    unknown = api.login(new_email(), "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"


def test_repeated_wrong_passwords_are_throttled(start_server: StartServer) -> None:
    base = start_server(
        login_throttle=LoginThrottleSettings(max_attempts=3, base_lockout_seconds=60)
    )
    with Api(base) as api:
        email = new_email()
        api.signup(email)
        statuses = [api.login(email, f"guess-{n}").status_code for n in range(3)]
        assert statuses == [401, 401, 401]
        locked = api.login(email, PASSWORD)  # even the right password waits out the lockout
        assert locked.status_code == 429
        assert locked.json()["code"] == "too_many_attempts"
        assert 1 <= int(locked.headers["Retry-After"]) <= 60
        # Another email from the same client is not locked.
        other = new_email()
        api.signup(other)
        assert api.login(other, PASSWORD).status_code == 200


def test_success_resets_the_attempt_count(start_server: StartServer) -> None:
    base = start_server(login_throttle=LoginThrottleSettings(max_attempts=3))
    with Api(base) as api:
        email = new_email()
        api.signup(email)
        for _ in range(2):
            assert api.login(email, "wrong password").status_code == 401
        assert api.login(email, PASSWORD).status_code == 200
        for _ in range(2):
            assert api.login(email, "wrong password").status_code == 401
        assert api.login(email, PASSWORD).status_code == 200


def test_expired_token_is_401(alice: Api, database_url: str) -> None:
    assert alice.client.get("/v1/auth/whoami", headers=alice.auth).status_code == 200
    assert alice.token is not None
    digest = hashlib.sha256(alice.token.encode()).digest()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.token_sha256 == digest)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    expired = alice.client.get("/v1/auth/whoami", headers=alice.auth)
    assert (expired.status_code, expired.json()["code"]) == (401, "unauthorized")
    assert expired.headers["www-authenticate"] == "Bearer"
    store = alice.client.get("/v1/stores", headers=alice.auth)
    assert store.status_code == 401


def test_short_ttl_setting_expires_sessions(start_server: StartServer) -> None:
    base = start_server(token_ttl=timedelta(seconds=-1))
    with Api(base) as api:
        api.signup()
        assert api.client.get("/v1/auth/whoami", headers=api.auth).status_code == 401


def test_tokens_and_passwords_are_stored_only_as_digests(alice: Api, database_url: str) -> None:
    assert alice.token is not None
    engine = create_engine(database_url)
    with engine.connect() as conn:
        digests = [row.token_sha256 for row in conn.execute(select(sessions.c.token_sha256))]
        hashes = [row.password_hash for row in conn.execute(select(accounts.c.password_hash))]
    engine.dispose()
    assert hashlib.sha256(alice.token.encode()).digest() in digests
    assert all(alice.token.encode() not in bytes(d) for d in digests)
    assert all(h is None or (h.startswith("$argon2id$") and PASSWORD not in h) for h in hashes)


def test_missing_or_malformed_authorization_is_401(server: str) -> None:
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer nope"},
    ):
        response = httpx.get(f"{server}/v1/stores", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "unauthorized"
        assert response.headers["content-type"] == "application/problem+json"


def test_weak_signup_input_is_422(new_api: Callable[[], Api]) -> None:
    api = new_api()
    short = api.client.post("/v1/auth/signup", json={"email": new_email(), "password": "Zq7#x"})
    no_at = api.client.post("/v1/auth/signup", json={"email": "nobody", "password": PASSWORD})
    for response in (short, no_at):
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
        assert "Zq7#x" not in response.text  # the password is never echoed
