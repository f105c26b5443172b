"""Wire models of the HTTP API (pydantic) and the base64url codec for opaque bytes."""

from __future__ import annotations

import binascii
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict

from mo_local.server.errors import InvalidBase64

# Sequences and revisions stay far below BIGINT so a hostile number can never overflow SQL.
MAX_COUNTER = 2**62

# What `decode_base64url` accepts, as a pattern (documented in the OpenAPI schema and
# checked against the decoder by the tests); the decoder itself avoids the regex, which
# cost more than the decoding on every record of a push.
_BASE64URL_PATTERN = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$"
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")

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
    stripped = text.rstrip("=")
    size = len(stripped)
    padding = len(text) - size
    # A lone trailing character carries no whole byte; padding, if any, must be exact.
    if size % 4 == 1 or (padding and padding != -size % 4):
        raise InvalidBase64()
    try:
        data = stripped.encode("ascii")
    except UnicodeEncodeError as exc:
        raise InvalidBase64() from exc
    if data.translate(None, _ALPHABET):  # anything left is outside the alphabet
        raise InvalidBase64()
    return binascii.a2b_base64(data.translate(_TO_STANDARD) + b"=" * (-size % 4))


def encode_base64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    encoded = binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


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
