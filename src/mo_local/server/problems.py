"""RFC 9457 problem details: rendering, exception handlers and their OpenAPI description."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mo_local.server.errors import (
    DatabaseUnavailable,
    InvalidRequest,
    MalformedJson,
    MethodNotAllowed,
    NotFound,
    ServerError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_log = logging.getLogger("mo_local.server.errors")

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details with a stable machine-readable `code`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "head": {"type": "integer", "description": "server head (server_ahead/behind)"},
        "revision": {"type": "integer", "description": "current vault revision"},
        "event_id": {"type": "string", "description": "the conflicting event id"},
        "retry_after": {"type": "integer", "description": "seconds until a retry"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}

_DESCRIPTIONS = {
    400: "Malformed request (`malformed_json`)",
    401: "Missing, invalid or expired credentials (`unauthorized`, `invalid_credentials`)",
    404: "Not found (`store_not_found`, `vault_not_found`) — also for other accounts' stores",
    409: "Conflict (see `code`)",
    413: "Too large (`body_too_large`, `too_many_records`, `record_too_large`, `vault_too_large`)",
    422: "Invalid request (`invalid_request`, `invalid_base64`, `page_too_large`, …)",
    429: "Throttled (`too_many_attempts`), see Retry-After",
    503: "Identity provider or database unavailable, see Retry-After",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for error statuses, all with the Problem schema."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        for status in statuses
    }


def problem_document(error: ServerError) -> dict[str, object]:
    """The JSON document of a problem."""
    document: dict[str, object] = {
        "type": f"urn:mo-local:problem:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    document.update(error.extra)
    return document


def problem_response(
    error: ServerError, *, errors: list[dict[str, object]] | None = None
) -> Response:
    """A complete problem+json response for an error."""
    document = problem_document(error)
    if errors is not None:
        document["errors"] = errors
    return Response(
        content=json.dumps(document, separators=(",", ":")).encode(),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every failure, framework ones included, as a problem."""

    async def on_server_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServerError)
        return problem_response(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = list(exc.errors())
        if any(item.get("type") == "json_invalid" for item in details):
            return problem_response(MalformedJson())
        # Only location, message and type: pydantic's `input`/`ctx` may echo a password.
        errors: list[dict[str, object]] = [
            {
                "loc": [part for part in item.get("loc", ()) if isinstance(part, str | int)],
                "msg": str(item.get("msg", "")),
                "type": str(item.get("type", "")),
            }
            for item in details
        ]
        return problem_response(InvalidRequest(), errors=errors)

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            error: ServerError = MethodNotAllowed(headers=dict(exc.headers or {}))
        elif exc.status_code == 404:
            error = NotFound()
        else:
            error = ServerError()
            error.status, error.code, error.title = exc.status_code, "http_error", "Request failed"
            error.detail = error.title
        return problem_response(error)

    async def on_database_down(_request: Request, exc: Exception) -> Response:
        # The type only: driver messages can quote the connection target or values.
        _log.error("database unavailable error=%s", type(exc).__name__)
        return problem_response(DatabaseUnavailable())

    app.add_exception_handler(ServerError, on_server_error)
    app.add_exception_handler(OperationalError, on_database_down)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


class ContainUnexpectedErrors:
    """Turns any other exception into a 500 problem and logs it without its message.

    Starlette's own handler re-raises so that the server logs the exception with its
    message — and driver messages can quote values (an email, a key). Here the log
    line has the type and the frame locations only, and nothing propagates.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; contain what escapes it."""
        started = False

        async def send_and_track(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_track)
        except Exception as exc:  # noqa: BLE001 - this is the app's error boundary
            # Where, not what: file, line and function of each frame, no source text.
            frames = " <- ".join(
                f"{frame.filename}:{frame.lineno}:{frame.name}"
                for frame in reversed(traceback.extract_tb(exc.__traceback__)[-12:])
            )
            _log.error("unhandled error type=%s at %s", type(exc).__name__, frames)
            if scope["type"] == "http" and not started:
                await problem_response(ServerError())(scope, receive, send)


def install_problem_schema(app: FastAPI) -> None:
    """Generate the OpenAPI document once, with the Problem schema among its components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
