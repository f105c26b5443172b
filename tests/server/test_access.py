"""Only the owning account reaches a store; others get the same 404 as for no store at all."""

from __future__ import annotations

import uuid

import httpx

from .helpers import Api, b64, random_record


def test_another_account_cannot_list_pull_push_or_touch_the_vault(alice: Api, bob: Api) -> None:
    store = alice.claim()
    record = random_record()
    assert alice.push(store, 0, [record]).status_code == 200
    vault_url = f"/v1/stores/{store}/vault"
    vault = {"expected_revision": None, "revision": 1, "vault": b64(b"vault")}
    assert alice.client.put(vault_url, json=vault, headers=alice.auth).status_code == 200

    assert bob.client.get("/v1/stores", headers=bob.auth).json() == []
    attempts = {
        "pull": bob.pull(store),
        "long-poll": bob.pull(store, wait=5),
        "push": bob.push(store, 1, [random_record()]),
        "push-replay": bob.push(store, 0, [record]),
        "claim": bob.client.put(f"/v1/stores/{store}", headers=bob.auth),
        "get-vault": bob.client.get(vault_url, headers=bob.auth),
        "put-vault": bob.client.put(
            vault_url, json={**vault, "expected_revision": 1, "revision": 2}, headers=bob.auth
        ),
    }
    for name, response in attempts.items():
        assert response.status_code == 404, name
        assert response.json()["code"] == "store_not_found", name

    # Exactly what an unknown store answers: no existence oracle.
    unknown = bob.pull(str(uuid.uuid4()))
    assert unknown.json() == attempts["pull"].json()
    # Nothing changed for the owner.
    assert alice.pull_all(store) == [(1, record[0], record[1])]
    assert alice.client.get(vault_url, headers=alice.auth).json()["revision"] == 1


def test_no_token_is_401_everywhere(alice: Api, server: str) -> None:
    store = alice.claim()
    calls = [
        ("GET", "/v1/stores", None),
        ("PUT", f"/v1/stores/{store}", None),
        ("GET", f"/v1/stores/{store}/vault", None),
        (
            "PUT",
            f"/v1/stores/{store}/vault",
            {"expected_revision": None, "revision": 1, "vault": "AA"},
        ),
        ("POST", f"/v1/stores/{store}/push", {"expected_head": 0, "records": []}),
        ("GET", f"/v1/stores/{store}/pull", None),
        ("GET", "/v1/auth/whoami", None),
        ("POST", "/v1/auth/logout", None),
    ]
    for method, path, body in calls:
        response = httpx.request(method, f"{server}{path}", json=body)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "unauthorized"
    assert alice.pull(store).json()["head"] == 0
    assert alice.client.get(f"/v1/stores/{store}/vault", headers=alice.auth).status_code == 404


def test_no_token_is_401_before_the_body_or_query_is_validated(alice: Api, server: str) -> None:
    """Push and pull resolve the credentials before FastAPI validates the body or the
    query: a caller without a token learns nothing about what a valid request is."""
    store = alice.claim()
    push = httpx.post(f"{server}/v1/stores/{store}/push", json={"records": "not a list"})
    pull = httpx.get(f"{server}/v1/stores/{store}/pull", params={"since": "-1", "limit": "x"})
    for response in (push, pull):
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
    with_token = httpx.post(
        f"{server}/v1/stores/{store}/push", json={"records": "not a list"}, headers=alice.auth
    )
    assert with_token.status_code == 422
