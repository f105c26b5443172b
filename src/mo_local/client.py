"""The composition root: one object that a CLI, a UI or a script uses.

`Client` opens a store (taking the single-writer lock), unlocks the vault, and
wires the encrypted log, the application layer, derived state and sync together.
Nothing else in the package builds these objects.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypedDict

from mo_local import __version__
from mo_local.app.achievement import GoalAchievement, utc_now
from mo_local.app.commands import Command, ProjectCommand
from mo_local.app.handlers import CommandHandler
from mo_local.app.ports import CommandResult
from mo_local.app.queries import GoalView, ListGoals, ListProjects, ProjectView
from mo_local.backup import (
    BackupMismatch,
    copy_database,
    database_store_id,
    open_key_backup,
    seal_key_backup,
    write_private_atomically,
)
from mo_local.crypto.kdf import DEFAULT_KDF, KdfParams, is_below_advisory
from mo_local.crypto.vault import (
    UnlockedVault,
    VaultHeader,
    change_passphrase,
    create_vault,
    rotate_recovery_key,
    unlock_with_passphrase,
    unlock_with_recovery_key,
)
from mo_local.derived.projector import Projector
from mo_local.derived.readmodel import AggregateState
from mo_local.domain.errors import DomainError, NotFound
from mo_local.domain.values import new_id
from mo_local.eventlog import EncryptedLog
from mo_local.repository import EncryptedRepository, KnownState
from mo_local.store.errors import StoreError
from mo_local.store.eventstore import EventStore
from mo_local.store.records import NewEvent
from mo_local.sync.session import remote_status

DB_NAME = "mo.db"
META_STORE_ID = "store_id"
META_DEVICE_ID = "device_id"
META_VAULT = "vault_header"


class ClientError(Exception):
    """A problem the user can act on; the message is safe to show."""


class StoreExists(ClientError):
    """The home already holds a store."""


class NoStore(ClientError):
    """The home holds no store."""


class Locked(ClientError):
    """The operation needs the vault unlocked."""


class PendingEvents(ClientError):
    """Local events not yet synced would be lost."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(
            f"{count} local event(s) are not synced and would be lost; "
            "sync first, or add --force to delete them anyway"
        )


def backup_database(home: Path, out: Path) -> Path:
    """A consistent copy of a home's database, also while another process holds it."""
    copy_database(database_path(home), out)
    return out.resolve()


class CommandBase(TypedDict):
    """The fields every command carries."""

    aggregate_id: str
    actor: str
    at: str
    known_version: int | None
    idempotency_key: str | None


@dataclass(frozen=True)
class Check:
    """One line of `mo doctor`: a name, whether it passed, and a secret-free detail.

    An advisory check (such as a KDF weaker than advised) is reported but does not
    make `mo doctor` fail.
    """

    name: str
    ok: bool
    detail: str
    advisory: bool = False


def database_path(home: Path) -> Path:
    """Where the store of a home lives."""
    return home / DB_NAME


class Client:
    """A store opened by this process: locked until `unlock` succeeds."""

    def __init__(self, home: Path, store: EventStore):
        self.home = home
        self.store = store
        self._vault: UnlockedVault | None = None
        self._log: EncryptedLog | None = None
        self._session: _Session | None = None

    # -- lifecycle --------------------------------------------------------------

    @classmethod
    def create(
        cls, home: Path, passphrase: str, kdf: KdfParams = DEFAULT_KDF
    ) -> tuple[Client, str]:
        """Create a store and its vault; returns the client and the recovery key (shown once)."""
        path = database_path(home)
        if path.exists():
            raise StoreExists(f"{home} already holds a store")
        home.mkdir(parents=True, exist_ok=True)
        store_id = str(uuid.uuid4())
        new = create_vault(store_id, passphrase, kdf)
        store = EventStore.open(path, create=True)
        try:
            with store.transaction():
                store.set_meta(META_STORE_ID, store_id.encode())
                store.set_meta(META_DEVICE_ID, str(uuid.uuid4()).encode())
                store.set_meta(META_VAULT, new.header.to_bytes())
        except BaseException:
            store.close()
            raise
        client = cls(home, store)
        client._install_vault(new.vault)
        return client, new.recovery_key

    @classmethod
    def create_from_header(
        cls,
        home: Path,
        header: VaultHeader,
        passphrase: str | None = None,
        *,
        recovery_key: str | None = None,
    ) -> Client:
        """A new device of an existing store (join): unlock the given vault header.

        The header is checked by unlocking it (with the passphrase, or the recovery
        key) before anything is written.
        """
        path = database_path(home)
        if path.exists():
            raise StoreExists(f"{home} already holds a store")
        if recovery_key is not None:
            vault = unlock_with_recovery_key(header, recovery_key)
        elif passphrase is not None:
            vault = unlock_with_passphrase(header, passphrase)
        else:
            raise ClientError("joining needs the passphrase or the recovery key")
        home.mkdir(parents=True, exist_ok=True)
        store = EventStore.open(path, create=True)
        try:
            with store.transaction():
                store.set_meta(META_STORE_ID, header.store_id.encode())
                store.set_meta(META_DEVICE_ID, str(uuid.uuid4()).encode())
                store.set_meta(META_VAULT, header.to_bytes())
        except BaseException:
            store.close()
            raise
        client = cls(home, store)
        client._install_vault(vault)
        return client

    @classmethod
    def restore(
        cls,
        home: Path,
        keys: Path,
        db: Path | None = None,
        *,
        passphrase: str | None = None,
        recovery_key: str | None = None,
    ) -> Client:
        """A new device from a key backup and, optionally, a database backup (DESIGN.md §9).

        Nothing is written to the home until the key backup has been opened and,
        when given, the database backup shown to belong to the same store.
        """
        if database_path(home).exists():
            raise StoreExists(f"{home} already holds a store")
        backup = open_key_backup(keys, passphrase=passphrase, recovery_key=recovery_key)
        try:
            if db is not None and database_store_id(db) != backup.store_id:
                raise BackupMismatch(
                    f"{db} belongs to another store than the key backup {keys}; "
                    "refusing to mix them"
                )
            home.mkdir(parents=True, exist_ok=True)
            path = database_path(home)
            if db is not None:
                copy_database(db, path)
            store = EventStore.open(path, create=db is None)
        except BaseException:
            backup.vault.lock()
            raise
        try:
            with store.transaction():
                current = store.get_meta(META_VAULT)
                header = backup.header
                if current is not None:
                    in_db = VaultHeader.from_bytes(current)
                    # An older vault revision never replaces a newer one (DESIGN.md §9).
                    if in_db.vault_id == header.vault_id and in_db.revision > header.revision:
                        header = in_db
                store.set_meta(META_STORE_ID, backup.store_id.encode())
                store.set_meta(META_DEVICE_ID, str(uuid.uuid4()).encode())
                store.set_meta(META_VAULT, header.to_bytes())
                for row in backup.key_records:
                    if (
                        store.key_record(row.key_id) is None
                        and store.get_event(row.event_id) is None
                    ):
                        store.append(
                            row.aggregate_id, store.current_version(row.aggregate_id), [row]
                        )
                store.clear_derived()
        except BaseException:
            store.close()
            backup.vault.lock()
            raise
        client = cls(home, store)
        client._install_vault(backup.vault)
        return client

    @classmethod
    def open(cls, home: Path) -> Client:
        """Open the store of a home (takes the single-writer lock; StoreBusy if held)."""
        path = database_path(home)
        if not path.exists():
            raise NoStore(f"no store in {home}; run `mo init` or `mo join`")
        store = EventStore.open(path)
        client = cls(home, store)
        try:
            client._meta(META_STORE_ID)
            client._meta(META_VAULT)
        except BaseException:
            store.close()
            raise
        return client

    def close(self) -> None:
        """Lock the vault and release the store."""
        self.lock()
        self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity -------------------------------------------------------------

    def _meta(self, key: str) -> bytes:
        value = self.store.get_meta(key)
        if value is None:
            raise ClientError(
                f"the store in {self.home} is incomplete ({key} missing); run `mo doctor`"
            )
        return value

    @property
    def store_id(self) -> str:
        """The store's random id."""
        return self._meta(META_STORE_ID).decode()

    @property
    def device_id(self) -> str:
        """This device's random id."""
        return self._meta(META_DEVICE_ID).decode()

    @property
    def vault_header(self) -> VaultHeader:
        """The current vault header (opaque wraps; no secret in clear)."""
        return VaultHeader.from_bytes(self._meta(META_VAULT))

    # -- keys -------------------------------------------------------------------

    def _install_vault(self, vault: UnlockedVault) -> None:
        self._vault = vault
        self._log = EncryptedLog(self.store, vault, self.store_id, self.device_id)
        self._session = None

    def unlock(self, passphrase: str) -> None:
        """Unlock with the passphrase (UnlockFailed when wrong)."""
        self._install_vault(unlock_with_passphrase(self.vault_header, passphrase))

    def unlock_with_recovery_key(self, recovery_key: str) -> None:
        """Unlock with the recovery key (UnlockFailed when wrong)."""
        self._install_vault(unlock_with_recovery_key(self.vault_header, recovery_key))

    def lock(self) -> None:
        """Save derived state, then drop every key and decrypted view from memory."""
        if self._session is not None:
            self._session.projector.close()
        if self._log is not None:
            self._log.forget_keys()
        if self._vault is not None:
            self._vault.lock()
        self._vault = None
        self._log = None
        self._session = None

    @property
    def unlocked(self) -> bool:
        """Whether keys are in memory."""
        return self._vault is not None

    @property
    def vault(self) -> UnlockedVault:
        """The unlocked vault (Locked otherwise)."""
        if self._vault is None:
            raise Locked("the vault is locked")
        return self._vault

    @property
    def log(self) -> EncryptedLog:
        """The encrypted event log (needs the vault unlocked)."""
        if self._log is None:
            raise Locked("the vault is locked")
        return self._log

    def change_passphrase(self, new_passphrase: str, kdf: KdfParams | None = None) -> None:
        """Re-wrap K_vault under a new passphrase; no data is re-encrypted."""
        header = change_passphrase(self.vault_header, self.vault, new_passphrase, kdf)
        self.store.set_meta(META_VAULT, header.to_bytes())

    def adopt_vault_header(self, header: VaultHeader) -> None:
        """Take a newer vault revision made by another device (checked by the caller).

        Only a header of this very vault with a higher revision is taken, so an
        older revision never replaces a newer one (DESIGN.md §9).
        """
        current = self.vault_header
        if header.vault_id != current.vault_id or header.store_id != current.store_id:
            raise ClientError("the offered vault header belongs to another vault")
        if header.revision > current.revision:
            self.store.set_meta(META_VAULT, header.to_bytes())

    def rotate_recovery_key(self) -> str:
        """Issue a new recovery key; the old one stops working."""
        header, recovery_key = rotate_recovery_key(self.vault_header, self.vault)
        self.store.set_meta(META_VAULT, header.to_bytes())
        return recovery_key

    # -- goals and projects -------------------------------------------------

    @property
    def session(self) -> _Session:
        """Derived state and the application layer, opened on first use after unlock."""
        if self._session is None:
            self._session = _Session(self.log, self.store_id)
        return self._session

    def new_id(self) -> str:
        """A fresh random aggregate id."""
        return new_id()

    def command_base(
        self, known_version: int | None, idempotency_key: str | None, aggregate_id: str
    ) -> CommandBase:
        """The fields every command carries, filled for a person at this device."""
        return {
            "aggregate_id": aggregate_id,
            "actor": "user",
            "at": utc_now(),
            "known_version": known_version,
            "idempotency_key": idempotency_key,
        }

    def execute(self, command: Command) -> CommandResult:
        """Run a command, then bring derived state and goal achievement up to date."""
        return self.session.execute(command)

    def goal(self, goal_id: str) -> GoalView:
        """One goal (NotFound otherwise)."""
        view = self.session.projector.model.goal(goal_id)
        if view is None:
            raise NotFound("goal", goal_id)
        return view

    def project(self, project_id: str) -> ProjectView:
        """One project (NotFound otherwise)."""
        view = self.session.projector.model.project(project_id)
        if view is None:
            raise NotFound("project", project_id)
        return view

    def list_goals(self, query: ListGoals) -> list[GoalView]:
        """Goals matching the filters."""
        return self.session.projector.model.list_goals(query)

    def list_projects(self, query: ListProjects) -> list[ProjectView]:
        """Projects matching the filters."""
        return self.session.projector.model.list_projects(query)

    def search(
        self, text: str, goals: bool = True, projects: bool = True
    ) -> tuple[list[GoalView], list[ProjectView]]:
        """Ranked search over goal summaries and project names and descriptions."""
        return self.session.projector.search(text, goals, projects)

    def conflicts(self) -> list[dict[str, str]]:
        """Events skipped because they were invalid at their place in effective order."""
        return [c.to_json() for c in self.session.projector.model.conflicts()]

    def rebuild(self) -> int:
        """Drop derived state and replay the whole log; returns the events replayed."""
        if self._session is None:
            # Opened by rebuilding: loading the cache and catching up first would be
            # thrown away (as would a second replay when opening found no cache).
            self._session = _Session(self.log, self.store_id, rebuild=True)
            return self._session.opened_with
        return self.session.rebuild()

    def pull_follower(self) -> Projector | None:
        """The read model that sync folds pulled events into while applying them.

        The open session's projector. A store without events (a device joining)
        gets its session opened for this, which costs nothing then; otherwise None,
        and whoever opens the session later catches up from the log.
        """
        if self._session is None and self.store.count_events():
            return None
        return self.session.projector

    def refresh(self) -> None:
        """Catch derived state up after writes that bypassed the application (sync)."""
        if self._session is not None:
            self._session.after_external_writes()

    # -- backups and wipe -------------------------------------------------------

    def backup_keys(self, out: Path) -> Path:
        """Write the encrypted key backup (vault header + key records), owner-only, atomic."""
        keys = [
            NewEvent(
                r.event_id, r.kind, r.aggregate_type, r.aggregate_id, r.version, r.key_id, r.record
            )
            for r in self.store.key_records()
        ]
        write_private_atomically(out, seal_key_backup(self.vault_header, self.vault, keys))
        return out.resolve()

    def wipe(self, force: bool = False) -> None:
        """Delete this home's store; refuses while events are pending unless forced."""
        pending = self.store.count_pending()
        if pending and not force:
            raise PendingEvents(pending)
        self.lock()
        db = self.store.path
        for suffix in ("-wal", "-shm", ""):
            victim = db.with_name(db.name + suffix)
            victim.unlink(missing_ok=True)
        self.store.close()
        self.store.lock_path.unlink(missing_ok=True)

    # -- status and diagnostics -----------------------------------------------

    def status(self) -> dict[str, object]:
        """Where things stand; needs no passphrase."""
        remote = remote_status(self.store)
        return {
            "store_id": self.store_id,
            "device_id": self.device_id,
            "events": self.store.count_events(),
            "pending": self.store.count_pending(),
            "remote": remote.url,
            "head": remote.last_head if remote.url else None,
            "cursor": remote.cursor if remote.url else None,
        }

    def doctor(self) -> list[Check]:
        """Secret-free checks for support."""
        return doctor_checks(self.home, self)


def doctor_checks(home: Path, client: Client | None, problem: str | None = None) -> list[Check]:
    """Diagnostics for a home, also when its store cannot be opened (then `problem` says why)."""
    checks = [
        Check(
            "version",
            True,
            f"mo-local {__version__}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {sys.platform}",
        ),
        Check("home", home.exists(), str(home)),
    ]
    path = database_path(home)
    if client is None:
        checks.append(Check("store", False, problem or f"no store at {path}"))
        holder = EventStore.lock_holder(path)
        if holder is not None:
            checks.append(Check("lock", False, f"held by pid {holder}"))
        return checks
    store = client.store
    checks.append(Check("store", True, str(path)))
    checks.append(Check("schema", True, f"schema version {store.schema_version()}"))
    try:
        rows = store.integrity_check()
        checks.append(
            Check(
                "integrity",
                rows == ["ok"],
                "ok" if rows == ["ok"] else f"{len(rows)} problem(s) reported by SQLite",
            )
        )
    except StoreError as exc:
        checks.append(Check("integrity", False, str(exc)))
    checks.append(
        Check("events", True, f"{store.count_events()} events, {store.count_pending()} pending")
    )
    try:
        header = client.vault_header
        weak = is_below_advisory(header.kdf)
        checks.append(
            Check(
                "kdf",
                not weak,
                f"Argon2id m={header.kdf.memory_kib} KiB t={header.kdf.iterations} "
                f"p={header.kdf.parallelism}"
                + (" (below the advised m=19456, t=2)" if weak else ""),
                advisory=True,
            )
        )
        checks.append(Check("vault", True, f"vault revision {header.revision}"))
    except Exception as exc:  # noqa: BLE001 - a broken header is itself the finding
        checks.append(Check("vault", False, f"vault header unreadable ({type(exc).__name__})"))
    checks.append(Check("lock", True, f"held by this process (pid {os.getpid()})"))
    cached = store.load_derived("readmodel", client.store_id)
    checks.append(
        Check(
            "cache",
            True,
            "no cache: the next unlock replays the log"
            if cached is None
            else f"encrypted read-model cache at cursor synced={cached[0].synced} "
            f"committed={cached[0].committed}",
        )
    )
    checks.extend(_sync_checks(store))
    return checks


def _sync_checks(store: EventStore) -> list[Check]:
    remote = remote_status(store)
    if remote.url is None:
        return [Check("sync", True, "no remote configured (local only)", advisory=True)]
    checks = [
        Check(
            "sync",
            True,
            f"remote {remote.url}, account {remote.account_id}, logged in: "
            f"{'yes' if remote.logged_in else 'no'}, cursor {remote.cursor}, "
            f"last head seen {remote.last_head}, pending {store.count_pending()}",
        )
    ]
    import httpx  # only when a remote exists: keeps `mo` start-up light

    try:
        response = httpx.get(f"{remote.url}/v1/health", timeout=3.0)
        reachable = response.status_code == 200
        detail = f"{remote.url} answered {response.status_code}"
    except httpx.HTTPError as exc:
        reachable = False
        detail = f"{remote.url} unreachable ({type(exc).__name__})"
    checks.append(Check("remote", reachable, detail, advisory=True))
    return checks


# What the read model says of an aggregate it holds no event of.
_NO_EVENTS: Final = AggregateState("", None, 0)


class _Session:
    """The unlocked working set: application layer, derived state, achievement process.

    After a command, the read model folds the events the command just wrote from
    the plaintext the repository sealed (Projector.follow): no read-back, no second
    decryption. That is only sound when the model had folded every event before
    the write, which the session knows from `EventStore.changes()`: equal to the
    count noted after its last fold means nothing was written since. Otherwise it
    asks the store (`covers_all`), and whenever anything is off it catches up
    from the log as before.
    """

    def __init__(self, log: EncryptedLog, store_id: str, *, rebuild: bool = False):
        self.log = log
        self.store = log.store
        self.repository = EncryptedRepository(
            log, keep_written=True, state_source=self._known_state
        )
        self.handler = CommandHandler(self.repository)
        self.projector = Projector(log.store, log, log.vault, store_id)
        # Events applied while opening (all of them when asked to rebuild).
        self.opened_with = self.projector.rebuild() if rebuild else self.projector.open()
        self.achievement = GoalAchievement(self.handler, _LiveIndex(self.projector))
        # store.changes() right after the read model last folded every event; None
        # when unknown (then the store is asked).
        self._current_at: int | None = None
        self.reconcile()

    def execute(self, command: Command) -> CommandResult:
        if not isinstance(command, ProjectCommand):
            current = self._model_current()
            result = self._handle(command)
            self._fold(current)
            return result
        before = self._goal_of(command.aggregate_id)
        current = self._model_current()
        result = self._handle(command)
        self._fold(current)
        goals = [g for g in (before, self._goal_of(command.aggregate_id)) if g]
        if goals:
            current = self._model_current()
            try:
                reacted = self.achievement.react(goals)
            except BaseException as exc:
                self._lost_track(exc)
                raise
            if reacted:
                self._fold(current)
        return result

    def _handle(self, command: Command) -> CommandResult:
        self.repository.discard_written()
        try:
            return self.handler.handle(command)
        except BaseException as exc:
            self._lost_track(exc)
            raise

    def _model_current(self) -> bool:
        """True iff the read model has folded every event in the store right now."""
        if self._current_at is not None and self._current_at == self.store.changes():
            return True
        if self.projector.covers_all():
            self._current_at = self.store.changes()
            return True
        return False

    def _known_state(self, aggregate_id: str) -> KnownState | None:
        """The command side's aggregate from the read model, while it covers every event.

        The model folds each aggregate's events with the reducers the command side
        uses, in effective order — the aggregate's version order, as devices push
        in commit order after pulling and rebases keep that order. Were a server or
        a device ever to deliver one aggregate's events out of version order,
        commands would decide on the state the user is shown.
        """
        if self._current_at is None or self._current_at != self.store.changes():
            return None
        known = self.projector.model.state(aggregate_id)
        return _NO_EVENTS if known is None else known

    def _fold(self, was_current: bool) -> None:
        """Bring the read model up to date after the handler committed its writes."""
        written = self.repository.take_written()
        if was_current and not self.store.in_transaction:
            # Everything before the writes was folded, and `written` is every event
            # written since, in commit order: follow them (nothing, if none).
            if not written or self.projector.follow(written):
                self._current_at = self.store.changes()
                return
        self._current_at = None
        self.projector.catch_up()

    def _lost_track(self, error: BaseException) -> None:
        """A command failed: what the repository recorded may not have committed."""
        self.repository.discard_written()
        self._current_at = None
        if not isinstance(error, DomainError):
            # Not a refusal by the rules (those come before anything is written) but,
            # say, a COMMIT that failed after the append: the decoded aggregates the
            # repository extended may hold events the store does not.
            self.repository.forget_loaded()

    def _goal_of(self, project_id: str) -> str | None:
        # The state, not a view (cheaper on every command), and read from the current
        # model each time: catching up may rebuild and replace it.
        project = self.projector.model.project_state(project_id)
        return project.goal_id if project is not None else None

    def reconcile(self) -> None:
        """Settle goals whose achieved flag disagrees with their linked projects.

        Only a goal that projects link to can disagree (`wanted` is None for the
        others), so only those are looked at: opening a store with thousands of
        goals does not check each one.
        """
        model = self.projector.model
        wrong = [goal_id for goal_id in model.linked_goal_ids() if self._disagrees(goal_id)]
        if wrong:
            # Caught up from the log as before: this runs once per unlock or sync.
            self._current_at = None
            try:
                if self.achievement.react(wrong):
                    self.projector.catch_up()
            finally:
                self.repository.discard_written()

    def _disagrees(self, goal_id: str) -> bool:
        goal = self.projector.model.goal_state(goal_id)
        if goal is None or goal.archived:
            return False
        wanted = self.achievement.wanted(goal_id)
        return wanted is not None and wanted != goal.achieved

    def rebuild(self) -> int:
        self._current_at = None
        return self.projector.rebuild()  # it saves the cache itself

    def after_external_writes(self) -> None:
        self._current_at = None
        self.repository.forget_loaded()
        self.projector.catch_up()
        self.reconcile()


class _LiveIndex:
    """The achievement process's view of goals: always the projector's current model.

    A rebuild replaces the read model, so holding on to one model would go stale.
    """

    def __init__(self, projector: Projector):
        self._projector = projector

    def linked_projects(self, goal_id: str) -> list[tuple[str, str, bool]]:
        """(project_id, status, archived) of every project linked to the goal."""
        return self._projector.model.linked_projects(goal_id)

    def all_goal_ids(self) -> list[str]:
        """Ids of every goal."""
        return self._projector.model.all_goal_ids()
