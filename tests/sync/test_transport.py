"""The transport's wire format and error mapping, including a misbehaving server.

A server that answers garbage cannot be produced with the real server, so these
few cases use httpx.MockTransport at that external boundary.
"""

from __future__ import annotations

import base64
import binascii
import json

import httpx
import pytest

from mo_local.sync.errors import (
    AuthRejected,
    RemoteRefused,
    RemoteUnreachable,
    ServerAhead,
    ServerBehind,
    VaultConflict,
)
from mo_local.sync.transport import (
    LOGIN_RETRIES,
    OutgoingRecord,
    Transport,
    decode_bytes,
    encode_bytes,
    normalise_url,
)

STORE = "0b8e8f0e-7d0c-4d7e-9a51-2b7b5b0d3c11"
EVENT = "5a0f7a63-2b9e-4d0b-8f43-1b8e9c0d2e44"
TOKEN = "tok-3b1c7f0d9e2a4c6b8d0f"


def answering(status: int, body: object, seen: list[httpx.Request] | None = None) -> Transport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content,
                              headers={"content-type": "application/problem+json"})

    return Transport("http://sync.test/", httpx.Client(transport=httpx.MockTransport(handler)),
                     token=TOKEN)


def test_base64url_round_trip_without_padding() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", bytes(range(256))):
        text = encode_bytes(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert decode_bytes(text) == data
        assert decode_bytes(text + "=" * (-len(text) % 4)) == data


@pytest.mark.parametrize(
    "text",
    ["", "AA", "AA==", "AA=", "AAA", "A", "AB-_", "AB+/", "AB-/", "A B", "AB\n", "é", "AA==A",
     "=", "====", "AQ", "AR", "_w", "__8", "____", "AAAA" * 300],
)
def test_base64url_decoding_accepts_exactly_what_b64decode_does(text: str) -> None:
    """`decode_bytes` skips base64.b64decode's per-call set-up; what it accepts is unchanged."""
    stripped = text.rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        expected: bytes | str = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        expected = "refused"
    try:
        got: bytes | str = decode_bytes(text)
    except RemoteRefused:
        got = "refused"
    assert got == expected


def test_push_sends_base64url_and_the_bearer_token() -> None:
    seen: list[httpx.Request] = []
    transport = answering(200, {"head": 7, "assigned": [{"event_id": EVENT, "seq": 7}]}, seen)
    result = transport.push(STORE, 6, [OutgoingRecord(EVENT, b"\xfb\xff record")])
    assert result.head == 7 and dict(result.assigned) == {EVENT: 7}
    [request] = seen
    assert request.url.path == f"/v1/stores/{STORE}/push"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.content)
    assert body == {"expected_head": 6,
                    "records": [{"event_id": EVENT, "record": encode_bytes(b"\xfb\xff record")}]}


@pytest.mark.parametrize(
    ("status", "problem", "error"),
    [
        (401, {"code": "unauthorized"}, AuthRejected),
        (409, {"code": "server_ahead", "head": 9}, ServerAhead),
        (409, {"code": "server_behind", "head": 2}, ServerBehind),
        (409, {"code": "vault_conflict", "revision": 3}, VaultConflict),
        (409, {"code": "event_id_conflict", "event_id": EVENT}, RemoteRefused),
        (413, {"code": "too_many_records"}, RemoteRefused),
        (500, {"code": "internal_error"}, RemoteRefused),
        (503, {"code": "unavailable"}, RemoteUnreachable),
    ],
)
def test_problems_become_typed_errors(status: int, problem: dict[str, object],
                                      error: type[Exception]) -> None:
    transport = answering(status, {"type": "about:blank", "title": "t", "status": status,
                                   "detail": f"detail mentioning {TOKEN}", **problem})
    with pytest.raises(error) as info:
        transport.push(STORE, 0, [OutgoingRecord(EVENT, b"secret record bytes")])
    text = str(info.value)
    assert TOKEN not in text and "secret record bytes" not in text
    if isinstance(info.value, ServerAhead | ServerBehind):
        assert info.value.head == problem["head"]
    if isinstance(info.value, RemoteRefused):
        assert info.value.status == status and info.value.problem_code == problem["code"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        {"records": "nope", "head": 1, "has_more": False},
        {"records": [{"seq": 1, "event_id": EVENT, "record": "***"}], "head": 1,
         "has_more": False},
        {"records": [], "head": -1, "has_more": False},
        {"records": [], "head": 1, "has_more": "no"},
        [],
    ],
)
def test_a_malformed_pull_answer_is_refused(body: object) -> None:
    with pytest.raises(RemoteRefused) as info:
        answering(200, body).pull(STORE, 0, 10)
    assert info.value.problem_code == "malformed_response"


def test_vault_absent_is_none_but_a_foreign_store_is_an_error() -> None:
    assert answering(404, {"code": "vault_not_found"}).get_vault(STORE) is None
    with pytest.raises(RemoteRefused):
        answering(404, {"code": "store_not_found"}).get_vault(STORE)


def test_repr_and_errors_never_show_the_token() -> None:
    transport = answering(200, {})
    assert TOKEN not in repr(transport)
    down = Transport("http://127.0.0.1:9", token=TOKEN)
    with pytest.raises(RemoteUnreachable) as info:
        down.whoami()
    assert TOKEN not in str(info.value)
    down.close()


@pytest.mark.parametrize("url", ["ftp://example.org", "http://", "https://u:p@example.org"])
def test_bad_server_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError) as info:
        normalise_url(url)
    assert "p@" not in str(info.value)


def test_urls_are_normalised() -> None:
    assert normalise_url(" https://sync.example.org/base/ ") == "https://sync.example.org/base"


def answering_in_turn(answers: list[tuple[int, dict[str, str], object]],
                      slept: list[float]) -> Transport:
    """A server stand-in giving `answers` (status, headers, body) in turn."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(status, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json", **headers})

    return Transport("http://sync.test/", httpx.Client(transport=httpx.MockTransport(handler)),
                     sleep=slept.append)


LOCKED = {"type": "about:blank", "title": "t", "status": 429, "code": "too_many_attempts"}
ACCOUNT = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_a_short_login_lockout_is_waited_out_and_retried() -> None:
    slept: list[float] = []
    transport = answering_in_turn([
        (429, {"Retry-After": "1"}, LOCKED),
        (429, {"Retry-After": "2"}, LOCKED),
        (200, {}, {"account_id": ACCOUNT, "token": TOKEN}),
    ], slept)
    assert transport.login("a@example.test", "pw").account_id == ACCOUNT
    assert slept == [1, 2]


@pytest.mark.parametrize("retry_after", ["3", "900", None])
def test_a_long_or_unknown_login_lockout_is_reported_at_once(retry_after: str | None) -> None:
    slept: list[float] = []
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    transport = answering_in_turn([(429, headers, LOCKED)], slept)
    with pytest.raises(RemoteRefused) as info:
        transport.login("a@example.test", "pw")
    assert slept == []
    assert info.value.status == 429 and info.value.problem_code == "too_many_attempts"
    if retry_after is None:
        assert info.value.retry_after is None and "try again" not in str(info.value)
    else:
        assert info.value.retry_after == int(retry_after)
        assert f"try again in {retry_after} s" in str(info.value)


def test_login_retries_are_bounded_and_wrong_passwords_never_retried() -> None:
    slept: list[float] = []
    transport = answering_in_turn([(429, {"Retry-After": "1"}, LOCKED)], slept)
    with pytest.raises(RemoteRefused):
        transport.login("a@example.test", "pw")
    assert slept == [1] * LOGIN_RETRIES
    slept.clear()
    wrong = {"type": "about:blank", "title": "t", "status": 401, "code": "invalid_credentials"}
    transport = answering_in_turn([(401, {}, wrong)], slept)
    with pytest.raises(AuthRejected):
        transport.login("a@example.test", "pw")
    assert slept == []
