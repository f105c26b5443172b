"""HTTP transport of the sync protocol (DESIGN.md §7) over an injected `httpx.Client`.

The transport knows the wire format — JSON bodies, base64url record bytes, RFC 9457
problems with a stable `code` — and turns every failure into a typed `SyncError`.
It knows nothing of keys, vaults or the local store: records are opaque bytes here.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mo_local.sync.errors import (
    AuthRejected,
    RemoteRefused,
    RemoteUnreachable,
    ServerAhead,
    ServerBehind,
    VaultConflict,
)

if TYPE_CHECKING:
    import httpx

# httpx is imported when a transport is made, not when `mo` starts: most commands
# never talk to a server, and the import costs ~50 ms of every command's start-up.
DEFAULT_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
# A long-poll holds the response open for `wait` seconds; allow that plus slack.
LONG_POLL_SLACK_SECONDS = 15.0
# Gateways answering these have not reached the server: worth retrying like a network error.
TRANSIENT_STATUSES = frozenset({502, 503, 504})


# -- values on the wire ---------------------------------------------------------------


@dataclass(frozen=True)
class AuthSession:
    """An account and the bearer token the server granted for it."""

    account_id: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class RemoteStoreInfo:
    """One of the account's stores as the server lists it."""

    store_id: str
    head: int
    vault_revision: int | None


@dataclass(frozen=True)
class RemoteVault:
    """The opaque vault header blob stored on the server, with its revision."""

    revision: int
    blob: bytes = field(repr=False)


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to push: its event id and exact bytes.

    `wire` may hold the bytes already in their wire form (`encode_bytes(record)`),
    made ahead of time while another push is in flight; `Transport` then sends it.
    """

    event_id: str
    record: bytes = field(repr=False)
    wire: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class PulledRecord:
    """A record the server holds at a sequence of the store."""

    seq: int
    event_id: str
    record: bytes = field(repr=False)


@dataclass(frozen=True)
class PushResult:
    """The store's head after a push and the sequence of every pushed event id."""

    head: int
    assigned: Mapping[str, int]


@dataclass(frozen=True)
class PullPage:
    """One page of records after a cursor, read by the server in one snapshot."""

    records: tuple[PulledRecord, ...]
    head: int
    has_more: bool


class RecordTransport(Protocol):
    """What the sync engine needs from a transport (tests wrap it to inject faults).

    The engine makes one call at a time, but a call may come from its worker
    thread (the next page or push in flight while one is applied).
    """

    def push(
        self, store_id: str, expected_head: int, records: Sequence[OutgoingRecord]
    ) -> PushResult:
        """Append records after `expected_head`."""
        ...

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        """Read records after `since`, long-polling up to `wait` seconds."""
        ...


# -- codec ----------------------------------------------------------------------------


def encode_bytes(data: bytes) -> str:
    """Unpadded base64url, the wire form of record and vault bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def decode_bytes(text: object) -> bytes:
    """Decode base64url with or without padding; a malformed value is a refused response."""
    if not isinstance(text, str):
        raise _malformed("bytes field is not a string")
    stripped = text.rstrip("=")
    try:
        # base64.b64decode(padded, altchars=b"-_", validate=True), without building
        # the translation table on every call (one call per pulled record).
        padded = (stripped + "=" * (-len(stripped) % 4)).encode("ascii")
        return binascii.a2b_base64(padded.translate(_URLSAFE_TO_STANDARD), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed("bytes field is not base64url") from exc


def _pulled_record(entry: object) -> PulledRecord:
    """One record of a pull page (the checks of `_object`, `_int` and `_str`, inlined:
    this runs once per pulled record)."""
    if not isinstance(entry, dict):
        raise _malformed("expected a JSON object")
    seq = entry.get("seq")
    if type(seq) is not int or seq < 0:
        raise _malformed("field 'seq' is not a non-negative integer")
    event_id = entry.get("event_id")
    if not isinstance(event_id, str):
        raise _malformed("field 'event_id' is not a string")
    return PulledRecord(seq, event_id, decode_bytes(entry.get("record")))


def _malformed(what: str) -> RemoteRefused:
    return RemoteRefused(200, "malformed_response", what)


def _int(obj: Mapping[str, object], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise _malformed(f"field {key!r} is not a non-negative integer")
    return value


def _str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _malformed(f"field {key!r} is not a string")
    return value


def _object(value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _malformed("expected a JSON object")
    return value


def _list(value: object, key: str) -> list[object]:
    if not isinstance(value, list):
        raise _malformed(f"field {key!r} is not a list")
    return value


# -- the transport --------------------------------------------------------------------


# A login refused as "too many attempts" with a wait this short is a burst of the
# user's own devices logging in at once (the server counts attempts as they start);
# it is retried after the wait, a few times. Longer lockouts are reported at once.
SHORT_LOCKOUT_SECONDS = 2
LOGIN_RETRIES = 3


class Transport:
    """Typed calls of the sync API on one server; holds the session token once logged in."""

    def __init__(
        self,
        url: str,
        http: httpx.Client | None = None,
        token: str | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import httpx

        self.url = normalise_url(url)
        self._http = (
            http
            if http is not None
            else httpx.Client(
                timeout=httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
            )
        )
        self._token = token
        self._sleep = sleep

    def __repr__(self) -> str:
        state = "authenticated" if self._token else "anonymous"
        return f"Transport({self.url!r}, {state})"

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._http.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authenticate(self, token: str | None) -> None:
        """Use this bearer token from now on (None forgets it)."""
        self._token = token

    @property
    def authenticated(self) -> bool:
        """Whether a token is set."""
        return self._token is not None

    # -- plumbing ---------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, str | int | float] | None = None,
        timeout: httpx.Timeout | None = None,
        auth: bool = True,
    ) -> tuple[int, object]:
        import httpx

        headers = {"Accept": "application/json"}
        if auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._http.request(
                method,
                self.url + path,
                json=body,
                params=params,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            # The exception text may echo the URL or request; name only its type.
            raise RemoteUnreachable(
                f"cannot reach the sync server at {self.url} ({type(exc).__name__})"
            ) from None
        if response.status_code in TRANSIENT_STATUSES:
            raise RemoteUnreachable(
                f"the sync server at {self.url} is unavailable ({response.status_code})"
            )
        try:
            document: object = response.json() if response.content else None
        except ValueError:
            document = None
        if response.status_code >= 400:
            raise _problem(response.status_code, document, response.headers.get("Retry-After"))
        return response.status_code, document

    # -- accounts ----------------------------------------------------------------

    def signup(self, email: str, password: str) -> AuthSession:
        """Create an account; the new session's token is kept for later calls."""
        _, doc = self._request(
            "POST", "/v1/auth/signup", body={"email": email, "password": password}, auth=False
        )
        return self._session(doc)

    def login(self, email: str, password: str) -> AuthSession:
        """Log in; the session's token is kept for later calls.

        A short lockout (`SHORT_LOCKOUT_SECONDS` or less: several devices of the
        account logging in from one address at once) is waited out and the login
        retried, at most `LOGIN_RETRIES` times; a wrong password is never retried.
        """
        for retries_left in range(LOGIN_RETRIES, -1, -1):
            try:
                _, doc = self._request(
                    "POST", "/v1/auth/login", body={"email": email, "password": password},
                    auth=False,
                )
            except RemoteRefused as exc:
                wait = exc.retry_after
                if (exc.status != 429 or wait is None or wait > SHORT_LOCKOUT_SECONDS
                        or not retries_left):
                    raise
                self._sleep(wait)
                continue
            return self._session(doc)
        raise AssertionError("unreachable: the last try returns or raises")

    def _session(self, doc: object) -> AuthSession:
        obj = _object(doc)
        session = AuthSession(_str(obj, "account_id"), _str(obj, "token"))
        self._token = session.token
        return session

    def logout(self) -> None:
        """Revoke the current session on the server and forget the token."""
        try:
            self._request("POST", "/v1/auth/logout")
        finally:
            self._token = None

    def whoami(self) -> str:
        """The account id of the current session."""
        _, doc = self._request("GET", "/v1/auth/whoami")
        return _str(_object(doc), "account_id")

    # -- stores and vault -----------------------------------------------------------

    def list_stores(self) -> list[RemoteStoreInfo]:
        """The account's stores."""
        _, doc = self._request("GET", "/v1/stores")
        items = _list(doc.get("stores") if isinstance(doc, dict) else doc, "stores")
        result = []
        for item in items:
            obj = _object(item)
            revision = obj.get("vault_revision")
            if revision is not None and type(revision) is not int:
                raise _malformed("field 'vault_revision' is not an integer")
            result.append(RemoteStoreInfo(_str(obj, "store_id"), _int(obj, "head"), revision))
        return result

    def claim_store(self, store_id: str) -> bool:
        """Claim a store id for the account; True if it was new, False if already ours."""
        status, _ = self._request("PUT", f"/v1/stores/{store_id}")
        return status == 201

    def get_vault(self, store_id: str) -> RemoteVault | None:
        """The store's vault header blob, or None if none was uploaded."""
        try:
            _, doc = self._request("GET", f"/v1/stores/{store_id}/vault")
        except RemoteRefused as exc:
            if exc.status == 404 and exc.problem_code != "store_not_found":
                return None
            raise
        obj = _object(doc)
        return RemoteVault(_int(obj, "revision"), decode_bytes(obj.get("vault")))

    def put_vault(
        self, store_id: str, expected_revision: int | None, revision: int, blob: bytes
    ) -> int:
        """Compare-and-set the vault blob; VaultConflict if the server's revision moved."""
        _, doc = self._request(
            "PUT",
            f"/v1/stores/{store_id}/vault",
            body={
                "expected_revision": expected_revision,
                "revision": revision,
                "vault": encode_bytes(blob),
            },
        )
        return _int(_object(doc), "revision") if isinstance(doc, dict) else revision

    # -- records ----------------------------------------------------------------------

    def push(
        self, store_id: str, expected_head: int, records: Sequence[OutgoingRecord]
    ) -> PushResult:
        """Append records after `expected_head` (idempotent per event id on the server)."""
        body = {
            "expected_head": expected_head,
            "records": [
                {"event_id": r.event_id,
                 "record": r.wire if r.wire is not None else encode_bytes(r.record)}
                for r in records
            ],
        }
        _, doc = self._request("POST", f"/v1/stores/{store_id}/push", body=body)
        obj = _object(doc)
        assigned: dict[str, int] = {}
        for item in _list(obj.get("assigned"), "assigned"):
            entry = _object(item)
            assigned[_str(entry, "event_id")] = _int(entry, "seq")
        return PushResult(_int(obj, "head"), assigned)

    def pull(self, store_id: str, since: int, limit: int, wait: float = 0.0) -> PullPage:
        """Records after `since` (at most `limit`), long-polling up to `wait` seconds."""
        params: dict[str, str | int | float] = {"since": since, "limit": limit}
        timeout = None
        if wait > 0:
            import httpx

            params["wait"] = wait
            timeout = httpx.Timeout(wait + LONG_POLL_SLACK_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
        _, doc = self._request("GET", f"/v1/stores/{store_id}/pull", params=params, timeout=timeout)
        obj = _object(doc)
        records = tuple(map(_pulled_record, _list(obj.get("records"), "records")))
        has_more = obj.get("has_more")
        if not isinstance(has_more, bool):
            raise _malformed("field 'has_more' is not a boolean")
        return PullPage(records, _int(obj, "head"), has_more)


def normalise_url(url: str) -> str:
    """The server's base URL without a trailing slash (part of the remembered identity)."""
    import httpx

    parsed = httpx.URL(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("the server URL must be http(s)://host[:port][/path]")
    if parsed.userinfo:
        raise ValueError("the server URL must not carry credentials")
    return str(parsed.copy_with(query=None, fragment=None)).rstrip("/")


def _problem(status: int, document: object, retry_after: str | None = None) -> Exception:
    obj = document if isinstance(document, dict) else {}
    code = obj.get("code")
    code = code if isinstance(code, str) else f"http_{status}"
    head = obj.get("head")
    if status == 401:
        return AuthRejected(code)
    if status == 409 and code == "server_ahead" and type(head) is int:
        return ServerAhead(head)
    if status == 409 and code == "server_behind" and type(head) is int:
        return ServerBehind(head)
    if status == 409 and code == "vault_conflict":
        revision = obj.get("revision")
        return VaultConflict(revision if type(revision) is int else None)
    # The problem's free-text detail is not shown: a validation problem may echo input.
    wait = retry_after.strip() if retry_after is not None else ""
    return RemoteRefused(status, code, retry_after=int(wait) if wait.isdigit() else None)
