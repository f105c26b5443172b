"""Bad input is a 4xx problem with a stable code, stores nothing, and is never a 5xx."""

from __future__ import annotations

import uuid

import httpx
import pytest

from mo_local.server import Limits

from .conftest import StartServer
from .helpers import Api, b64, random_record


@pytest.fixture
def tight(start_server: StartServer) -> Api:
    """An account on a server with small limits."""
    limits = Limits(
        max_records_per_push=3, max_record_bytes=100, max_body_bytes=4096, max_page_size=5
    )
    api = Api(start_server(limits=limits))
    return api.signup()


def _push_raw(api: Api, store: str, body: object) -> httpx.Response:
    return api.client.post(f"/v1/stores/{store}/push", json=body, headers=api.auth)


def test_malformed_json_is_400(alice: Api) -> None:
    store = alice.claim()
    response = alice.client.post(
        f"/v1/stores/{store}/push",
        content=b'{"expected_head": 0, "records": [',
        headers={**alice.auth, "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")
    assert response.headers["content-type"] == "application/problem+json"


WRONG_TYPES: list[object] = [
    {"expected_head": "0", "records": []},
    {"expected_head": True, "records": []},
    {"expected_head": 1.5, "records": []},
    {"expected_head": -1, "records": []},
    {"expected_head": 2**70, "records": []},
    {"expected_head": 0},
    {"expected_head": 0, "records": {}},
    {"expected_head": 0, "records": [{"event_id": "not-a-uuid", "record": "AA"}]},
    {"expected_head": 0, "records": [{"event_id": str(uuid.uuid4()), "record": 5}]},
    {"expected_head": 0, "records": [{"event_id": str(uuid.uuid4()), "record": ""}]},
    {"expected_head": 0, "records": [{"event_id": str(uuid.uuid4())}]},
    [1, 2, 3],
    "text",
]


def test_wrong_types_are_422(alice: Api) -> None:
    store = alice.claim()
    for body in WRONG_TYPES:
        response = _push_raw(alice, store, body)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request"), body
        assert isinstance(response.json()["errors"], list)
    assert alice.pull(store).json()["head"] == 0


def test_bad_base64_is_422(alice: Api) -> None:
    store = alice.claim()
    for text in ["A", "A===", "AB=C", "AB=", "ab+/", "YW I", "YWJj\n", "Ã"]:
        _assert_bad_base64(alice, store, text)
    assert alice.pull(store).json()["head"] == 0, "nothing of a refused push is stored"


def _assert_bad_base64(alice: Api, store: str, text: str) -> None:
    good = random_record()
    body = {
        "expected_head": 0,
        "records": [
            {"event_id": good[0], "record": b64(good[1])},
            {"event_id": str(uuid.uuid4()), "record": text},
        ],
    }
    response = _push_raw(alice, store, body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_base64"), text


def test_bad_uuid_in_path_is_422(alice: Api) -> None:
    for path in ("/v1/stores/zzz/pull", "/v1/stores/123/vault"):
        response = alice.client.get(path, headers=alice.auth)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


def test_duplicate_event_id_in_one_push_is_422(alice: Api) -> None:
    store = alice.claim()
    record = random_record()
    response = alice.push(store, 0, [record, record])
    assert (response.status_code, response.json()["code"]) == (422, "duplicate_event_id")
    assert alice.pull(store).json()["head"] == 0


def test_too_many_records_is_413(tight: Api) -> None:
    store = tight.claim()
    response = tight.push(store, 0, [random_record(4) for _ in range(4)])
    assert (response.status_code, response.json()["code"]) == (413, "too_many_records")
    assert tight.pull(store).json()["head"] == 0


def test_record_too_large_is_413(tight: Api) -> None:
    store = tight.claim()
    assert tight.push(store, 0, [random_record(100)]).status_code == 200
    response = tight.push(store, 1, [random_record(10), random_record(101)])
    assert (response.status_code, response.json()["code"]) == (413, "record_too_large")
    assert tight.pull(store).json()["head"] == 1


def test_body_too_large_is_413_by_content_length_and_by_streaming(tight: Api) -> None:
    store = tight.claim()
    big = {"expected_head": 0, "records": [{"event_id": str(uuid.uuid4()), "record": "A" * 5000}]}
    declared = _push_raw(tight, store, big)
    assert (declared.status_code, declared.json()["code"]) == (413, "body_too_large")

    def chunks() -> object:
        yield b'{"expected_head": 0, "records": [{"event_id": "'
        yield str(uuid.uuid4()).encode() + b'", "record": "'
        for _ in range(10):
            yield b"A" * 1000
        yield b'"}]}'

    streamed = tight.client.post(
        f"/v1/stores/{store}/push",
        content=chunks(),  # chunked transfer: no Content-Length to trust
        headers={**tight.auth, "Content-Type": "application/json"},
    )
    assert (streamed.status_code, streamed.json()["code"]) == (413, "body_too_large")
    assert tight.pull(store).json()["head"] == 0


def test_page_too_large_is_422(tight: Api) -> None:
    store = tight.claim()
    response = tight.pull(store, limit=6)
    assert (response.status_code, response.json()["code"]) == (422, "page_too_large")
    assert tight.pull(store, limit=5).status_code == 200


def test_bad_pull_parameters_are_422(alice: Api) -> None:
    store = alice.claim()
    bad: list[dict[str, object]] = [
        {"since": -1},
        {"since": "x"},
        {"since": 2**70},
        {"limit": 0},
        {"wait": -1},
        {"wait": "nan"},
        {"wait": "inf"},
    ]
    for params in bad:
        response = alice.client.get(f"/v1/stores/{store}/pull", params=params, headers=alice.auth)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request"), params


def test_unknown_store_is_404(alice: Api) -> None:
    unknown = str(uuid.uuid4())
    assert alice.push(unknown, 0, [random_record()]).json()["code"] == "store_not_found"
    assert alice.pull(unknown).status_code == 404
    vault = alice.client.put(
        f"/v1/stores/{unknown}/vault",
        json={"expected_revision": None, "revision": 1, "vault": "AA"},
        headers=alice.auth,
    )
    assert (vault.status_code, vault.json()["code"]) == (404, "store_not_found")


def test_vault_bad_input(alice: Api) -> None:
    store = alice.claim()
    url = f"/v1/stores/{store}/vault"
    cases = [
        ({"expected_revision": None, "revision": 0, "vault": "AA"}, 422, "invalid_request"),
        ({"expected_revision": None, "revision": 1, "vault": "A"}, 422, "invalid_base64"),
        ({"expected_revision": "1", "revision": 1, "vault": "AA"}, 422, "invalid_request"),
        ({"revision": 1, "vault": "AA"}, 422, "invalid_request"),
        (
            {"expected_revision": None, "revision": 1, "vault": b64(b"x" * 70_000)},
            413,
            "vault_too_large",
        ),
    ]
    for body, status, code in cases:
        response = alice.client.put(url, json=body, headers=alice.auth)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert alice.client.get(url, headers=alice.auth).status_code == 404


def test_unknown_route_and_wrong_method_are_problems(alice: Api) -> None:
    missing = alice.client.get("/v1/nothing-here")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = alice.client.delete("/v1/stores", headers=alice.auth)
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
