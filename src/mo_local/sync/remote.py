"""The remote of a store, kept in the store's `sync_state` table.

Plain values: the server URL, account id and store id (the remembered server
identity), the pull cursor, the last head seen and the event id at the cursor —
none of them secret or domain content. The account's email is not kept at all.
The session token is a secret: it is kept only sealed under a sub-key of K_vault
(AAD binds the store, server URL and account), so `mo remote status` can say
"logged in" from the blob's presence without the passphrase, while using the
token needs the vault unlocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mo_local.crypto import cbor
from mo_local.crypto.errors import CryptoError
from mo_local.crypto.vault import UnlockedVault
from mo_local.store.eventstore import EventStore
from mo_local.store.records import Cursor, StoredEvent
from mo_local.sync.errors import NotConnected

TOKEN_FORMAT = 1
SUBKEY_PURPOSE = "remote"

_URL = "remote.url"
_ACCOUNT = "remote.account_id"
_STORE = "remote.store_id"
_TOKEN = "remote.token"  # noqa: S105 - the name of a sync_state key, not a secret
_CURSOR = "sync.cursor"
_LAST_HEAD = "sync.last_head"
_TIP = "sync.tip"
_REPLAY = "sync.replay"


@dataclass(frozen=True)
class RemoteConfig:
    """The server identity this store syncs with: URL, account and store id."""

    url: str
    account_id: str
    store_id: str


class RemoteState:
    """Reads and writes the remote configuration and sync positions of one store."""

    def __init__(self, store: EventStore):
        self.store = store

    # -- plain values --------------------------------------------------------------

    def _text(self, key: str) -> str | None:
        value = self.store.get_sync_state(key)
        return None if value is None else value.decode("utf-8")

    def _number(self, key: str) -> int:
        value = self.store.get_sync_state(key)
        return 0 if value is None else int(value.decode("ascii"))

    def config(self) -> RemoteConfig | None:
        """The configured remote, or None if this store never connected to one."""
        url, account, store_id = (self._text(k) for k in (_URL, _ACCOUNT, _STORE))
        if url is None or account is None or store_id is None:
            return None
        return RemoteConfig(url, account, store_id)

    def require_config(self) -> RemoteConfig:
        """The configured remote, or NotConnected."""
        config = self.config()
        if config is None:
            raise NotConnected("this store has no remote; run `mo remote signup URL --email E` "
                               "or `mo remote login URL --email E`")
        return config

    @property
    def cursor(self) -> int:
        """The global sequence up to which records were pulled and applied."""
        return self._number(_CURSOR)

    @property
    def last_head(self) -> int:
        """The highest head the server ever reported to this store."""
        return self._number(_LAST_HEAD)

    @property
    def tip(self) -> str | None:
        """The event id this store holds at the cursor's sequence (None at cursor 0)."""
        return self._text(_TIP)

    def set_position(self, cursor: int, last_head: int, tip: str | None) -> None:
        """Record the pull cursor, the last head seen and the event id at the cursor."""
        with self.store.transaction():
            self.store.set_sync_state(_CURSOR, str(cursor).encode("ascii"))
            self.store.set_sync_state(_LAST_HEAD, str(last_head).encode("ascii"))
            self.store.set_sync_state(_TIP, None if tip is None else tip.encode("ascii"))

    @property
    def replay_order(self) -> list[str]:
        """Event ids to push first, in their former global order (kept by `reset`)."""
        value = self.store.get_sync_state(_REPLAY)
        return value.decode("ascii").split("\n") if value else []

    def clear_replay_order(self) -> None:
        """Forget the replay order once every event in it was pushed again."""
        self.store.set_sync_state(_REPLAY, None)

    def connect(self, config: RemoteConfig) -> bool:
        """Remember the server identity; a different server than before starts sync afresh.

        Global sequences of another server mean nothing on this one, so switching
        forgets every sync mapping (all events become pending and are pushed again)
        and the positions. Returns whether that happened.
        """
        previous = self.config()
        switched = previous is not None and previous != config
        with self.store.transaction():
            if switched:
                self.reset()
                self.store.set_sync_state(_TOKEN, None)
            self.store.set_sync_state(_URL, config.url.encode("utf-8"))
            self.store.set_sync_state(_ACCOUNT, config.account_id.encode("utf-8"))
            self.store.set_sync_state(_STORE, config.store_id.encode("utf-8"))
        return switched

    def reset(self) -> int:
        """Forget sync mappings, cursor and last head; returns how many events are pending.

        The former global order of the synced events is kept as the replay order:
        pushing them again in that order gives them the same sequences on a server
        restored from a backup, so devices that never noticed the restore keep
        valid mappings.
        """
        with self.store.transaction():
            order = [e.event_id for e in self._synced_in_global_order()]
            # A second reset before everything was pushed again keeps the rest of the first.
            seen = set(order)
            order += [e for e in self.replay_order if e not in seen]
            self.store.set_sync_state(_REPLAY, "\n".join(order).encode("ascii") or None)
            pending = self.store.forget_sync_mappings()
            self.set_position(0, 0, None)
        return pending

    def _synced_in_global_order(self) -> Iterator[StoredEvent]:
        for event in self.store.read_effective_order(Cursor()):
            if event.global_seq is None:
                return  # effective order lists every synced event before any pending one
            yield event

    # -- the session token -----------------------------------------------------------

    @staticmethod
    def _token_aad(config: RemoteConfig) -> bytes:
        return cbor.encode({"v": TOKEN_FORMAT, "purpose": "session-token",
                            "store_id": config.store_id, "url": config.url,
                            "account_id": config.account_id})

    @property
    def logged_in(self) -> bool:
        """Whether a sealed session token is kept (no passphrase needed to tell)."""
        return self.store.get_sync_state(_TOKEN) is not None

    def save_token(self, vault: UnlockedVault, config: RemoteConfig, token: str) -> None:
        """Seal and keep the session token for this remote."""
        blob = vault.aead(SUBKEY_PURPOSE).seal(token.encode("utf-8"), self._token_aad(config))
        self.store.set_sync_state(_TOKEN, blob)

    def token(self, vault: UnlockedVault, config: RemoteConfig) -> str:
        """Open the kept session token; NotConnected if there is none or it does not open."""
        blob = self.store.get_sync_state(_TOKEN)
        if blob is None:
            raise NotConnected(f"not logged in to {config.url}; "
                               "run `mo remote login URL --email E`")
        try:
            return vault.aead(SUBKEY_PURPOSE).open(blob, self._token_aad(config)).decode("utf-8")
        except (CryptoError, UnicodeDecodeError):
            raise NotConnected("the kept session token cannot be used; "
                               "run `mo remote login URL --email E`") from None

    def forget_token(self) -> None:
        """Drop the session token (logout)."""
        self.store.set_sync_state(_TOKEN, None)
