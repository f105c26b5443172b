"""Schemathesis against the app's own OpenAPI document, in-process: no 5xx, every status
documented, every response matching its schema — positive and negative data, with a
valid bearer token and a claimed store so the fuzzer reaches past authentication."""

from __future__ import annotations

import uuid

import anyio
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from mo_local.server import LoginThrottleSettings, create_app

from .helpers import PASSWORD, b64, make_settings, new_email

TOTAL_REQUESTS = 1000
# Hypothesis stops early where the input space is tiny (e.g. GET /v1/health).
EXAMPLES_PER_VARIANT = 60
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


async def _account_with_store(app: object) -> tuple[str, str]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        signup = await client.post(
            "/v1/auth/signup", json={"email": new_email(), "password": PASSWORD}
        )
        token = signup.json()["token"]
        store = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {token}"}
        await client.put(f"/v1/stores/{store}", headers=headers)
        record = {"event_id": str(uuid.uuid4()), "record": b64(b"opaque")}
        await client.post(
            f"/v1/stores/{store}/push",
            json={"expected_head": 0, "records": [record]},
            headers=headers,
        )
        return token, store


@pytest.mark.slow
def test_fuzz_openapi_no_server_errors_and_full_conformance(database_url: str) -> None:
    app = create_app(
        make_settings(
            database_url,
            max_wait_seconds=0.01,  # generated `wait` values must not stall the run
            login_throttle=LoginThrottleSettings(max_attempts=1_000_000),
        )
    )
    token, store = anyio.run(_account_with_store, app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    sent = 0

    for operation in operations:
        # Logout with the shared token would end the session every later case relies on.
        headers = {} if "logout" in operation.path else {"Authorization": f"Bearer {token}"}
        variants: list[tuple[GenerationMode, dict[str, object]]] = [
            (GenerationMode.POSITIVE, {}),
            (GenerationMode.NEGATIVE, {}),
        ]
        if "{store_id}" in operation.path:
            # Also the caller's own store, so pushes, pulls and vault writes get past 404.
            variants.append((GenerationMode.POSITIVE, {"store_id": store}))
        for mode, path_parameters in variants:
            strategy = operation.as_strategy(
                generation_mode=mode, headers=headers, path_parameters=path_parameters
            )

            @settings(
                max_examples=EXAMPLES_PER_VARIANT,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                nonlocal sent
                case.call_and_validate(checks=CHECKS)
                sent += 1

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): positive data covers it.
                assert mode is GenerationMode.NEGATIVE, operation.path
    assert sent >= TOTAL_REQUESTS, sent
