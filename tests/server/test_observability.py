"""Logs carry ids, sizes and timings only (INV-015); health and metrics for operators."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from starlette.types import Message, Receive, Scope, Send

from mo_local.server import create_app
from mo_local.server.observability import Metrics, ObservabilityMiddleware

from .conftest import StartServer
from .helpers import PASSWORD, Api, b64, make_settings, new_email, random_record, serve_in_thread


def test_inv015_logs_never_contain_record_bytes_tokens_passwords_or_emails(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """INV-015: DEBUG logs of signup, login (good and bad), push, pull and vault calls hold
    none of the secrets or payloads that crossed the wire."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # SQLAlchemy defaults to WARN
    server = start_server()  # after the level is set, so the engine logs its SQL too
    email = new_email()
    with Api(server) as api:
        api.signup(email, PASSWORD)
        assert api.login(email, "Wrong-Guess-9").status_code == 401
        assert api.login(email, PASSWORD).status_code == 200
        store = api.claim()
        batch = [random_record(90) for _ in range(3)]
        assert api.push(store, 0, batch).status_code == 200
        assert api.push(store, 0, [random_record()]).status_code == 409
        assert len(api.pull(store).json()["records"]) == 3
        vault = b"vault-blob-secretish"
        api.client.put(
            f"/v1/stores/{store}/vault",
            json={"expected_revision": None, "revision": 1, "vault": b64(vault)},
            headers=api.auth,
        )
        api.client.get(f"/v1/stores/{store}/vault", headers=api.auth)
        token = api.token
    assert token is not None
    text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL was logged"
    forbidden = [token, PASSWORD, "Wrong-Guess-9", email, b64(vault), vault.decode()]
    for _, data in batch:
        forbidden += [b64(data), b64(data, padded=True), data.hex(), repr(data)[2:-1]]
    for secret in forbidden:
        assert secret not in text
    access = [r.getMessage() for r in caplog.records if r.name == "mo_local.server.access"]
    push_lines = [line for line in access if "route=/v1/stores/{store_id}/push status=200" in line]
    assert push_lines and f"store_id={store}" in push_lines[0]
    assert "records=3" in push_lines[0] and "bytes=270" in push_lines[0]
    assert re.search(r"duration_ms=\d+\.\d+", push_lines[0])


def test_health_needs_no_auth(server: str) -> None:
    response = httpx.get(f"{server}/v1/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_metrics_count_requests_and_records(alice: Api, server: str) -> None:
    store = alice.claim()
    alice.push(store, 0, [random_record(10), random_record(20)])
    alice.pull(store)
    text = httpx.get(f"{server}/metrics").text
    assert "mo_records_pushed_total 2.0" in text
    assert "mo_record_bytes_pushed_total 30.0" in text
    assert "mo_records_pulled_total 2.0" in text
    assert (
        'mo_http_requests_total{method="POST",route="/v1/stores/{store_id}/push",status="200"} 1.0'
        in text
    )
    assert 'mo_http_request_duration_seconds_bucket{le="0.005",method="GET"' in text
    assert store not in text, "no per-store labels (unbounded cardinality, ids)"


def test_request_series_keep_counting_per_method_route_and_status(alice: Api, server: str) -> None:
    """The middleware looks each labelled series up once; the counts stay exact."""
    store = alice.claim()
    for head in range(3):
        assert alice.push(store, head, [random_record(4)]).status_code == 200
    assert alice.push(store, 0, [random_record(4)]).status_code == 409
    text = httpx.get(f"{server}/metrics").text
    route = 'method="POST",route="/v1/stores/{store_id}/push"'
    assert f'mo_http_requests_total{{{route},status="200"}} 3.0' in text
    assert f'mo_http_requests_total{{{route},status="409"}} 1.0' in text
    assert f"mo_http_request_duration_seconds_count{{{route}}} 4.0" in text


def test_odd_methods_do_not_grow_the_series_cache_without_bound() -> None:
    """Clients choose the method: past a bound, series are looked up on each request."""
    metrics = Metrics()

    async def answer(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = ObservabilityMiddleware(answer, metrics)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    async def run() -> None:
        for n in range(700):
            for _ in range(2):
                await middleware({"type": "http", "method": f"M{n}"}, receive, send)

    asyncio.run(run())
    assert len(middleware._series) <= 512
    for n in (0, 699):
        labels = {"method": f"M{n}", "route": "unmatched", "status": "405"}
        assert metrics.registry.get_sample_value("mo_http_requests_total", labels) == 2.0


def test_two_apps_in_one_process_have_separate_metrics(start_server: object) -> None:
    first = start_server()  # type: ignore[operator]
    second = start_server()  # type: ignore[operator]
    httpx.get(f"{first}/v1/health")
    httpx.get(f"{first}/v1/health")
    count = re.compile(r'route="/v1/health",status="200"\} (\S+)')
    assert count.search(httpx.get(f"{first}/metrics").text).group(1) == "2.0"  # type: ignore[union-attr]
    assert count.search(httpx.get(f"{second}/metrics").text) is None


def test_inv015_unexpected_errors_are_500_problems_logged_without_their_message(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """INV-015: an unexpected exception (whose message could quote a value) becomes a 500
    problem; the log names its type and frames, never its message."""
    caplog.set_level(logging.INFO)
    app = create_app(make_settings(database_url))

    def explode(*_args: object) -> None:
        raise RuntimeError("secret-value-from-a-driver-message")

    monkeypatch.setattr(app.state.mo.record_log, "push", explode)
    with serve_in_thread(app) as base, Api(base) as api:
        api.signup()
        store = api.claim()
        response = api.push(store, 0, [random_record()])
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret-value" not in response.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled error type=RuntimeError" in logged
    assert "secret-value-from-a-driver-message" not in logged
    assert any(
        "route=/v1/stores/{store_id}/push status=500" in r.getMessage() for r in caplog.records
    )


def test_database_errors_are_503_problems(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that is down or locked past the busy timeout is a 503 with Retry-After,
    logged by type only."""
    app = create_app(make_settings(database_url))

    def locked(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("secret-in-driver-message"))

    monkeypatch.setattr(app.state.mo.record_log, "pull", locked)
    with serve_in_thread(app) as base, Api(base) as api:
        api.signup()
        response = api.pull(api.claim())
    assert (response.status_code, response.json()["code"]) == (503, "database_unavailable")
    assert response.headers["retry-after"] == "1"
    assert "secret-in-driver-message" not in "\n".join(r.getMessage() for r in caplog.records)
