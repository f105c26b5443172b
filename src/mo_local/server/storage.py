"""Accounts, sessions, stores and vault blobs in the server database (SQLAlchemy Core).

The record log itself (push and pull) lives in `record_log.py`. Every method is
synchronous and runs one transaction; the HTTP layer calls them from a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mo_local.server.database import Database
from mo_local.server.errors import (
    EmailTaken,
    StoreNotFound,
    Unauthorized,
    VaultConflict,
    VaultNotFound,
    VaultRevisionNotNewer,
)
from mo_local.server.schema import accounts, sessions, stores
from mo_local.server.statements import SESSION

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Read a stored timestamp as UTC (SQLite returns naive values that were written as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class LoginRecord:
    """What a login needs to know about an account."""

    account_id: UUID
    password_hash: str | None = field(repr=False)


@dataclass(frozen=True)
class Credentials:
    """What a request presented: an account already verified (Kratos), or the digest of
    a bearer token that the operation verifies against `sessions` in its own transaction.

    The hot paths (push, pull) take credentials instead of a `Principal`, so checking
    the session costs one more statement on a connection they hold anyway, not a
    separate thread hop and transaction.
    """

    account_id: UUID | None = None
    token_sha256: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StoreRow:
    """A store as its owner sees it."""

    store_id: UUID
    head: int
    vault_revision: int | None


@dataclass(frozen=True)
class Vault:
    """An opaque vault blob and its revision."""

    revision: int
    blob: bytes = field(repr=False)


class Storage:
    """Account, session, store and vault persistence."""

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._db = database
        self._clock = clock
        self._session_sql = database.codec.sql(SESSION)

    def now(self) -> datetime:
        """The storage clock (UTC)."""
        return self._clock()

    # -- accounts and sessions ------------------------------------------------------

    def create_account(self, email: str, password_hash: str) -> UUID:
        """Create a built-in account; `EmailTaken` if the email is in use."""
        account_id = uuid4()
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(accounts).values(
                        id=account_id,
                        email=email,
                        password_hash=password_hash,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError as exc:
            raise EmailTaken() from exc
        return account_id

    def ensure_external_account(self, account_id: UUID) -> None:
        """Create the row of an identity managed elsewhere (Kratos) the first time it is seen."""
        with self._db.snapshot() as conn:
            found = conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first()
        if found is not None:
            return
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(accounts).values(
                        id=account_id, email=None, password_hash=None, created_at=self._clock()
                    )
                )
        except IntegrityError:
            pass  # created concurrently by another request or process

    def find_login(self, email: str) -> LoginRecord | None:
        """The account with this email, if any."""
        with self._db.snapshot() as conn:
            row = conn.execute(
                select(accounts.c.id, accounts.c.password_hash).where(accounts.c.email == email)
            ).first()
        return None if row is None else LoginRecord(row.id, row.password_hash)

    def replace_password_hash(self, account_id: UUID, password_hash: str) -> None:
        """Store a re-computed hash (stronger parameters) for an account."""
        with self._db.write() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(password_hash=password_hash)
            )

    def create_session(self, account_id: UUID, token_sha256: bytes, expires_at: datetime) -> None:
        """Store a new session and drop the account's expired ones."""
        with self._db.write() as conn:
            conn.execute(
                delete(sessions).where(
                    sessions.c.account_id == account_id, sessions.c.expires_at <= self._clock()
                )
            )
            conn.execute(
                insert(sessions).values(
                    token_sha256=token_sha256, account_id=account_id, expires_at=expires_at
                )
            )

    def verified_account(self, credentials: Credentials) -> UUID:
        """The account of the credentials; `Unauthorized` without a live session."""
        if credentials.account_id is not None:
            return credentials.account_id
        with self._db.read() as conn:
            return self.account_in(conn, credentials)

    def account_in(self, conn: Connection, credentials: Credentials) -> UUID:
        """`verified_account` on a connection the caller holds (one statement at most)."""
        if credentials.account_id is not None:
            return credentials.account_id
        row = None
        if credentials.token_sha256 is not None:
            row = conn.exec_driver_sql(self._session_sql, (credentials.token_sha256,)).first()
        return self.session_row_account(None if row is None else (row[0], row[1]))

    def session_row_account(self, row: tuple[object, object] | None) -> UUID:
        """The account of a `sessions` row read by driver-level SQL, if it is still live;
        `Unauthorized` for no row or an expired one."""
        codec = self._db.codec
        if row is None or as_utc(codec.to_time(row[1])) <= self._clock():
            raise Unauthorized()
        return codec.to_uuid(row[0])

    def delete_session(self, token_sha256: bytes) -> None:
        """Revoke a session."""
        with self._db.write() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_sha256 == token_sha256))

    # -- stores and vaults ----------------------------------------------------------

    def list_stores(self, account_id: UUID) -> list[StoreRow]:
        """The account's stores, oldest first."""
        with self._db.snapshot() as conn:
            rows = conn.execute(
                select(stores.c.store_id, stores.c.head, stores.c.vault_revision)
                .where(stores.c.owner_account_id == account_id)
                .order_by(stores.c.created_at, stores.c.store_id)
            ).all()
        return [StoreRow(row.store_id, row.head, row.vault_revision) for row in rows]

    def claim_store(self, account_id: UUID, store_id: UUID) -> tuple[StoreRow, bool]:
        """Claim a store id; returns the store and whether it was created now.

        Another account's store is `StoreNotFound`, exactly like an unknown one.
        """
        try:
            with self._db.write() as conn:
                row = conn.execute(
                    select(stores.c.owner_account_id, stores.c.head, stores.c.vault_revision)
                    .where(stores.c.store_id == store_id)
                    .with_for_update()
                ).first()
                if row is not None:
                    if row.owner_account_id != account_id:
                        raise StoreNotFound()
                    return StoreRow(store_id, row.head, row.vault_revision), False
                conn.execute(
                    insert(stores).values(
                        store_id=store_id,
                        owner_account_id=account_id,
                        head=0,
                        vault_blob=None,
                        vault_revision=None,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError:
            # Claimed concurrently by another process: decide again on the committed row.
            return self.claim_store(account_id, store_id)
        return StoreRow(store_id, 0, None), True

    def get_vault(self, account_id: UUID, store_id: UUID) -> Vault:
        """The store's vault; `VaultNotFound` if none was uploaded."""
        with self._db.snapshot() as conn:
            row = conn.execute(
                select(
                    stores.c.owner_account_id, stores.c.vault_revision, stores.c.vault_blob
                ).where(stores.c.store_id == store_id)
            ).first()
        if row is None or row.owner_account_id != account_id:
            raise StoreNotFound()
        if row.vault_blob is None or row.vault_revision is None:
            raise VaultNotFound()
        return Vault(row.vault_revision, bytes(row.vault_blob))

    def put_vault(
        self, account_id: UUID, store_id: UUID, expected_revision: int | None, vault: Vault
    ) -> int:
        """Compare-and-set the vault: only over `expected_revision`, only to a newer revision."""
        with self._db.write() as conn:
            row = conn.execute(
                select(stores.c.owner_account_id, stores.c.vault_revision)
                .where(stores.c.store_id == store_id)
                .with_for_update()
            ).first()
            if row is None or row.owner_account_id != account_id:
                raise StoreNotFound()
            current: int | None = row.vault_revision
            # Revisions start at 1, so an expected 0 means "no vault yet", like null.
            if (current or 0) != (expected_revision or 0):
                raise VaultConflict(current)
            if current is not None and vault.revision <= current:
                raise VaultRevisionNotNewer(current)
            conn.execute(
                update(stores)
                .where(stores.c.store_id == store_id)
                .values(vault_blob=vault.blob, vault_revision=vault.revision)
            )
        return vault.revision
