"""Wire models of the HTTP API (pydantic) and the base64url codec for opaque bytes."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict

from mo_local.server.errors import InvalidBase64

# Sequences and revisions stay far below BIGINT so a hostile number can never overflow SQL.
MAX_COUNTER = 2**62

_BASE64URL = re.compile(r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$")
_BASE64URL_PATTERN = _BASE64URL.pattern

Base64Url = Annotated[
    str,
    Field(
        min_length=1,
        description="opaque bytes, base64url; padding optional on input, absent on output",
        # Documented only: the handler decodes and answers `invalid_base64` itself.
        json_schema_extra={"pattern": _BASE64URL_PATTERN},
    ),
]


def decode_base64url(text: str) -> bytes:
    """Decode base64url with or without `=` padding; anything else is `InvalidBase64`."""
    if not _BASE64URL.fullmatch(text):
        raise InvalidBase64()
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64() from exc


def encode_base64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# Strict: "5" is not a number and true is not 1 — clients get an error, not a guess.
Counter = Annotated[int, Strict()]


class _Request(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=False)


# No blanks or control characters (PostgreSQL text cannot even hold NUL).
_EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"


class SignupRequest(_Request):
    """Create a built-in account."""

    email: str = Field(min_length=3, max_length=320, pattern=_EMAIL_PATTERN)
    password: str = Field(min_length=8, max_length=1024)


class LoginRequest(_Request):
    """Log in to a built-in account."""

    email: str = Field(min_length=3, max_length=320, pattern=_EMAIL_PATTERN)
    password: str = Field(min_length=1, max_length=1024)


class SessionGranted(BaseModel):
    """A new session: the bearer token is shown once and stored only as its SHA-256."""

    account_id: UUID
    token: str


class WhoAmI(BaseModel):
    """The authenticated account."""

    account_id: UUID


class StoreInfo(BaseModel):
    """One of the caller's stores."""

    store_id: UUID
    head: int
    vault_revision: int | None


class VaultDocument(BaseModel):
    """The opaque vault header of a store."""

    revision: int
    vault: str


class VaultUpload(_Request):
    """Vault compare-and-set: succeeds only if the current revision is `expected_revision`."""

    expected_revision: Counter | None = Field(ge=0, le=MAX_COUNTER)
    revision: Counter = Field(ge=1, le=MAX_COUNTER)
    vault: Base64Url


class VaultStored(BaseModel):
    """The vault revision now on the server."""

    revision: int


class PushRecord(_Request):
    """One opaque record with its client-chosen event id."""

    event_id: UUID
    record: Base64Url


class PushRequest(_Request):
    """Records to append after `expected_head`."""

    expected_head: Counter = Field(ge=0, le=MAX_COUNTER)
    records: list[PushRecord]


class Assigned(BaseModel):
    """The sequence a record holds in its store."""

    event_id: UUID
    seq: int


class PushResponse(BaseModel):
    """The store's head after the push and the sequence of every pushed record."""

    head: int
    assigned: list[Assigned]


class PulledRecord(BaseModel):
    """A record in store order."""

    seq: int
    event_id: UUID
    record: str


class PullResponse(BaseModel):
    """One page of records after the cursor, read in one snapshot."""

    records: list[PulledRecord]
    head: int
    has_more: bool


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]
