"""Typed failures of the server, each with its HTTP status and stable problem `code`.

Messages are fixed texts or carry ids and numbers only — never emails, passwords,
tokens or record bytes (INV-015).
"""

from __future__ import annotations

from collections.abc import Mapping


class ServerError(Exception):
    """A failure the client sees as an RFC 9457 problem with a stable code."""

    status: int = 500
    code: str = "internal_error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, int | str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extra: dict[str, int | str] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)


class MalformedJson(ServerError):
    """The body is not JSON."""

    status, code, title = 400, "malformed_json", "The request body is not valid JSON"


class InvalidRequest(ServerError):
    """A parameter or body field has the wrong type, format or range."""

    status, code, title = 422, "invalid_request", "The request is not valid"


class InvalidBase64(ServerError):
    """A bytes field is not base64url."""

    status, code, title = 422, "invalid_base64", "A bytes field is not valid base64url"


class DuplicateEventId(ServerError):
    """One push names the same event id twice."""

    status, code, title = 422, "duplicate_event_id", "An event id appears twice in one push"


class PageTooLarge(ServerError):
    """A pull asked for more records per page than the server serves."""

    status, code, title = 422, "page_too_large", "The requested page size exceeds the limit"


class TooManyRecords(ServerError):
    """A push carries more records than allowed."""

    status, code, title = 413, "too_many_records", "Too many records in one push"


class RecordTooLarge(ServerError):
    """One record exceeds the per-record byte limit."""

    status, code, title = 413, "record_too_large", "A record exceeds the size limit"


class VaultTooLarge(ServerError):
    """The vault blob exceeds its byte limit."""

    status, code, title = 413, "vault_too_large", "The vault exceeds the size limit"


class BodyTooLarge(ServerError):
    """The request body exceeds the byte limit."""

    status, code, title = 413, "body_too_large", "The request body exceeds the size limit"


class Unauthorized(ServerError):
    """No, an unknown, a revoked or an expired credential."""

    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(ServerError):
    """Unknown email or wrong password — deliberately indistinguishable."""

    status, code, title = 401, "invalid_credentials", "Invalid email or password"


class TooManyAttempts(ServerError):
    """Login locked out for a while after repeated failures."""

    status, code, title = 429, "too_many_attempts", "Too many failed login attempts"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"Try again in {retry_after_seconds} s",
            extra={"retry_after": retry_after_seconds},
            headers={"Retry-After": str(retry_after_seconds)},
        )


class EmailTaken(ServerError):
    """Signup with an email that already has an account."""

    status, code, title = 409, "email_taken", "An account with this email exists"


class NotFound(ServerError):
    """No such route."""

    status, code, title = 404, "not_found", "Not found"


class MethodNotAllowed(ServerError):
    """The route exists but not with this method."""

    status, code, title = 405, "method_not_allowed", "Method not allowed"


class StoreNotFound(ServerError):
    """No such store for this account — also when another account owns it (no oracle)."""

    status, code, title = 404, "store_not_found", "Store not found"


class VaultNotFound(ServerError):
    """The store has no vault yet."""

    status, code, title = 404, "vault_not_found", "The store has no vault"


class VaultConflict(ServerError):
    """Compare-and-set of the vault failed: the current revision is not the expected one."""

    status, code, title = 409, "vault_conflict", "The vault revision changed"

    def __init__(self, current_revision: int | None) -> None:
        extra = {} if current_revision is None else {"revision": current_revision}
        super().__init__(extra=extra)


class VaultRevisionNotNewer(ServerError):
    """A vault upload whose revision does not exceed the current one."""

    status, code, title = 409, "vault_revision_not_newer", "The vault revision must increase"

    def __init__(self, current_revision: int) -> None:
        super().__init__(extra={"revision": current_revision})


class ServerAhead(ServerError):
    """Push with new records whose expected head is behind the server's head."""

    status, code, title = 409, "server_ahead", "The server has records you have not pulled"

    def __init__(self, head: int) -> None:
        super().__init__(extra={"head": head})


class ServerBehind(ServerError):
    """Push whose expected head is beyond the server's head: the server lost history."""

    status, code, title = 409, "server_behind", "The server has fewer records than you saw"

    def __init__(self, head: int) -> None:
        super().__init__(extra={"head": head})


class EventIdConflict(ServerError):
    """An event id already stored with different bytes."""

    status, code, title = 409, "event_id_conflict", "The event id is stored with other bytes"

    def __init__(self, event_id: str) -> None:
        super().__init__(extra={"event_id": event_id})


class IdentityProviderUnavailable(ServerError):
    """The external identity provider (Ory Kratos) did not answer usefully."""

    status, code, title = 503, "identity_provider_unavailable", "The identity provider failed"


class DatabaseUnavailable(ServerError):
    """The database did not answer in time (locked past the busy timeout, or down)."""

    status, code, title = 503, "database_unavailable", "The database is unavailable"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})
