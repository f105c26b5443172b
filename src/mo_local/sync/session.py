"""High-level sync operations that the CLI and the client use.

Sign up or log in (claim the store, keep the sealed token, reconcile the vault
header), log out, status, one sync round, a watch loop, and `join` for a new
device. This module works on a `SyncTarget` — the few things of an opened,
unlocked store that sync needs — so it never imports the composition root: the
caller passes `Client` (or anything shaped like it) in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from mo_local.crypto import cbor
from mo_local.crypto.errors import EncodingError
from mo_local.crypto.vault import UnlockedVault, VaultHeader
from mo_local.eventlog import EncryptedLog
from mo_local.store.eventstore import EventStore
from mo_local.sync.backoff import RetryPolicy
from mo_local.sync.engine import PullFollower, SyncEngine, SyncResult
from mo_local.sync.errors import (
    AuthRejected,
    IdentityMismatch,
    NoRemoteStore,
    NotConnected,
    RemoteRefused,
    RemoteUnreachable,
    StoreChoiceNeeded,
    VaultConflict,
)
from mo_local.sync.remote import RemoteConfig, RemoteState
from mo_local.sync.transport import AuthSession, Transport

log = logging.getLogger("mo_local.sync")

VAULT_CAS_ATTEMPTS = 3


class SyncTarget(Protocol):
    """An opened, unlocked store as sync sees it (`Client` fits)."""

    @property
    def store(self) -> EventStore:
        """The local event store."""
        ...

    @property
    def log(self) -> EncryptedLog:
        """The encrypted log over it (needs the vault unlocked)."""
        ...

    @property
    def vault(self) -> UnlockedVault:
        """The unlocked vault."""
        ...

    @property
    def vault_header(self) -> VaultHeader:
        """The local vault header."""
        ...

    @property
    def store_id(self) -> str:
        """The store's id."""
        ...

    def close(self) -> None:
        """Lock and release the store."""
        ...

    def pull_follower(self) -> PullFollower | None:
        """Derived state to fold pulled events into as they are applied, if any."""
        ...

    def refresh(self) -> None:
        """Catch derived state up after sync wrote to the store."""
        ...


TargetT = TypeVar("TargetT", bound=SyncTarget)


@dataclass(frozen=True)
class RemoteAccount:
    """The result of signup/login: where this store now syncs, and as whom."""

    url: str
    account_id: str
    switched_server: bool = False
    vault: VaultSync | None = None


@dataclass(frozen=True)
class RemoteStatus:
    """What `mo remote status` shows; needs no passphrase."""

    url: str | None
    account_id: str | None
    logged_in: bool
    cursor: int
    last_head: int


@dataclass(frozen=True)
class VaultSync:
    """How the local vault header compares with the server's after reconciling."""

    action: Literal["uploaded", "same", "newer_on_server"]
    revision: int
    newer: VaultHeader | None = None


@dataclass(frozen=True)
class SyncRound:
    """One `mo sync`: the engine's counts and the vault reconciliation."""

    result: SyncResult
    vault: VaultSync


def _nothing() -> None:
    return None


# -- connecting -----------------------------------------------------------------------


def signup(target: SyncTarget, transport: Transport, email: str, password: str) -> RemoteAccount:
    """Create an account, claim this store on it, keep the token, upload the vault header."""
    return _attach(target, transport, transport.signup(email, password))


def login(target: SyncTarget, transport: Transport, email: str, password: str) -> RemoteAccount:
    """Log in, claim this store, keep the token; never replace a newer vault with an older one."""
    return _attach(target, transport, transport.login(email, password))


def _attach(target: SyncTarget, transport: Transport, session: AuthSession) -> RemoteAccount:
    store_id = target.store_id
    try:
        transport.claim_store(store_id)
    except RemoteRefused as exc:
        if exc.status == 404:
            raise IdentityMismatch(
                f"the store {store_id} is held by another account on this server"
            ) from None
        raise
    config = RemoteConfig(transport.url, session.account_id, store_id)
    state = RemoteState(target.store)
    with target.store.transaction():
        switched = state.connect(config)
        state.save_token(target.vault, config, session.token)
    if switched:
        log.info("sync: new server identity; sync mappings forgotten, everything will be pushed")
    vault = reconcile_vault(target, transport)
    return RemoteAccount(config.url, config.account_id, switched, vault)


def open_transport(
    target: SyncTarget, factory: Callable[[str], Transport] = Transport
) -> Transport:
    """A transport to this store's remote, authenticated with the kept token."""
    state = RemoteState(target.store)
    config = state.require_config()
    if config.store_id != target.store_id:
        raise IdentityMismatch("the remote configuration belongs to another store")
    transport = factory(config.url)
    transport.authenticate(state.token(target.vault, config))
    return transport


def logout(target: SyncTarget, factory: Callable[[str], Transport] = Transport) -> bool:
    """Revoke the session on the server and forget the token; returns whether the server revoked.

    The token is forgotten locally even when the server cannot be reached (it
    then simply expires there).
    """
    state = RemoteState(target.store)
    try:
        transport = open_transport(target, factory)
    except NotConnected:
        state.forget_token()
        return False
    try:
        transport.logout()
        return True
    except AuthRejected:
        return True  # the server no longer honours it: as good as revoked
    except (RemoteUnreachable, RemoteRefused):
        return False
    finally:
        state.forget_token()
        transport.close()


def remote_status(store: EventStore) -> RemoteStatus:
    """The remote of a store and where sync stands; needs no passphrase."""
    state = RemoteState(store)
    config = state.config()
    return RemoteStatus(
        url=config.url if config else None,
        account_id=config.account_id if config else None,
        logged_in=config is not None and state.logged_in,
        cursor=state.cursor,
        last_head=state.last_head,
    )


# -- the vault header -----------------------------------------------------------------


REMOTE_VAULT_FORMAT = 1


def seal_remote_vault(header: VaultHeader, vault: UnlockedVault) -> bytes:
    """The opaque vault blob for the server: the header plus an endorsement.

    The endorsement is an HMAC under a K_vault sub-key: only a device that holds
    K_vault can make one, so a server cannot talk a device into adopting a forged
    "newer" vault header that would lock it out.
    """
    body = header.to_bytes()
    mac = hmac.new(vault.subkey("vault-endorse"), body, hashlib.sha256).digest()
    return cbor.encode({"v": REMOTE_VAULT_FORMAT, "header": body, "mac": mac})


def _parse_remote_header(blob: bytes, store_id: str) -> tuple[VaultHeader, bytes]:
    try:
        outer = cbor.decode(blob, max_depth=2)
        if not (
            isinstance(outer, dict)
            and outer.get("v") == REMOTE_VAULT_FORMAT
            and isinstance(outer.get("header"), bytes)
            and isinstance(outer.get("mac"), bytes)
        ):
            raise EncodingError("unknown remote vault format")
        header = VaultHeader.from_bytes(outer["header"])
    except EncodingError:
        raise IdentityMismatch("the vault on the server is unreadable") from None
    if header.store_id != store_id:
        raise IdentityMismatch("the vault on the server belongs to another store")
    return header, outer["mac"]


def endorsed(vault: UnlockedVault, header: VaultHeader, mac: bytes) -> bool:
    """Whether a vault header was made by a device holding this K_vault."""
    expected = hmac.new(vault.subkey("vault-endorse"), header.to_bytes(), hashlib.sha256).digest()
    return hmac.compare_digest(expected, mac)


def reconcile_vault(target: SyncTarget, transport: Transport) -> VaultSync:
    """Upload the local vault header if the server's is missing or older (compare-and-set).

    An older revision never replaces a newer one (DESIGN.md §9): when the server's
    is newer it is returned for the caller to adopt, and nothing is uploaded.
    """
    local = target.vault_header
    for _ in range(VAULT_CAS_ATTEMPTS):
        remote = transport.get_vault(local.store_id)
        expected: int | None = None
        if remote is not None:
            header, mac = _parse_remote_header(remote.blob, local.store_id)
            if header.vault_id != local.vault_id:
                raise IdentityMismatch("the vault on the server is another vault of this store")
            if header.revision > local.revision:
                if not endorsed(target.vault, header, mac):
                    raise IdentityMismatch(
                        "the server offers a newer vault header that none of your devices "
                        "made; it was not adopted"
                    )
                return VaultSync("newer_on_server", header.revision, header)
            if header.revision == local.revision:
                return VaultSync("same", local.revision)
            expected = remote.revision
        try:
            transport.put_vault(
                local.store_id, expected, local.revision, seal_remote_vault(local, target.vault)
            )
        except VaultConflict:
            continue  # someone uploaded meanwhile: compare again
        return VaultSync("uploaded", local.revision)
    raise VaultConflict()


# -- syncing --------------------------------------------------------------------------


def engine_for(
    target: SyncTarget,
    transport: Transport,
    on_remote_events: Callable[[], None] = _nothing,
    retry: RetryPolicy | None = None,
) -> SyncEngine:
    """The sync engine of a target over a transport."""
    return SyncEngine(
        target.store, target.log, transport, target.store_id, on_remote_events, retry=retry,
        follower=target.pull_follower(),
    )


def sync_once(
    target: SyncTarget,
    transport: Transport,
    on_remote_events: Callable[[], None] = _nothing,
    retry: RetryPolicy | None = None,
) -> SyncRound:
    """Reconcile the vault header, pull, rebase and push once."""
    vault = reconcile_vault(target, transport)
    result = engine_for(target, transport, on_remote_events, retry).sync()
    return SyncRound(result, vault)


def watch(
    target: SyncTarget,
    transport: Transport,
    stop: Callable[[], bool],
    on_remote_events: Callable[[], None] = _nothing,
    on_round: Callable[[SyncResult], None] = lambda _result: None,
    wait: float = 25.0,
    retry: RetryPolicy | None = None,
) -> SyncResult:
    """Sync, then long-poll for remote records and push until `stop()`; returns the totals.

    An unreachable server does not end the loop: it backs off and tries again.
    """
    policy = retry if retry is not None else RetryPolicy()
    engine = engine_for(target, transport, on_remote_events, policy)
    reconcile_vault(target, transport)
    pushed = pulled = 0
    failures = 0
    first = True
    while first or not stop():
        try:
            if first:
                result = engine.sync()
            else:
                got = engine.pull(wait=wait)
                result = SyncResult(engine.push(), got, engine.state.last_head)
        except RemoteUnreachable:
            failures += 1
            policy.pause(min(failures, 10))
            first = False
            continue
        failures = 0
        first = False
        pushed += result.pushed
        pulled += result.pulled
        on_round(result)
    return SyncResult(pushed, pulled, engine.state.last_head)


# -- a new device ---------------------------------------------------------------------


def _choose_store(transport: Transport, store_id: str | None) -> str:
    stores = [s.store_id for s in transport.list_stores()]
    if store_id is not None:
        if store_id not in stores:
            raise NoRemoteStore(f"the account holds no store {store_id}")
        return store_id
    if not stores:
        raise NoRemoteStore("the account holds no store yet; sign up from the first device")
    if len(stores) > 1:
        raise StoreChoiceNeeded(sorted(stores))
    return stores[0]


def join(
    transport: Transport,
    email: str,
    password: str,
    create: Callable[[VaultHeader], TargetT],
    store_id: str | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[TargetT, int]:
    """A new device: log in, fetch the vault header, create the store, pull everything.

    `create` makes the local store from the header (the caller unlocks it with
    the passphrase, e.g. `Client.create_from_header`). Returns the target and the
    number of events pulled. Derived state is built while the records are applied
    (the target's follower folds them as they commit) and caught up at the end.
    """
    session = transport.login(email, password)
    chosen = _choose_store(transport, store_id)
    remote = transport.get_vault(chosen)
    if remote is None:
        raise NoRemoteStore(
            f"the store {chosen} has no vault on the server yet; log in from a device that has it"
        )
    header, mac = _parse_remote_header(remote.blob, chosen)
    target = create(header)
    try:
        if not endorsed(target.vault, header, mac):
            raise IdentityMismatch("the vault on the server was not made by one of your devices")
        config = RemoteConfig(transport.url, session.account_id, chosen)
        state = RemoteState(target.store)
        with target.store.transaction():
            state.connect(config)
            state.save_token(target.vault, config, session.token)
        events = engine_for(target, transport, retry=retry).pull()
        target.refresh()
    except BaseException:
        target.close()
        raise
    return target, events
