"""Backups: the encrypted key backup file and consistent database copies (DESIGN.md §9).

A key backup holds the vault header (K_vault wrapped under the passphrase and
under the recovery key) and every key record of the store. The key records are
sealed once more under a backup key derived from K_vault, with AAD binding the
format and the store id, so the file shows no aggregate ids or counts beyond its
size, and any change to it fails authentication. Opening it needs the passphrase
or the recovery key, exactly like the store itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mo_local.crypto import cbor
from mo_local.crypto.errors import CryptoError, EncodingError
from mo_local.crypto.vault import (
    UnlockedVault,
    VaultHeader,
    unlock_with_passphrase,
    unlock_with_recovery_key,
)
from mo_local.store.records import NewEvent

KEY_BACKUP_MAGIC = "mo-local key backup"
KEY_BACKUP_FORMAT = 1
MAX_KEY_BACKUP_BYTES = 64 * 1024 * 1024


class BackupError(Exception):
    """A backup file cannot be used; the message names the file, never its contents."""


class BackupMismatch(BackupError):
    """Two backups (or a backup and a home) belong to different stores."""


@dataclass(frozen=True)
class KeyBackup:
    """An opened key backup: the vault header, the unlocked vault and the key records."""

    header: VaultHeader
    vault: UnlockedVault
    key_records: list[NewEvent]

    @property
    def store_id(self) -> str:
        """The store this backup belongs to."""
        return self.header.store_id


def _aad(store_id: str) -> bytes:
    return cbor.encode({"magic": KEY_BACKUP_MAGIC, "v": KEY_BACKUP_FORMAT, "store": store_id})


def seal_key_backup(header: VaultHeader, vault: UnlockedVault, keys: list[NewEvent]) -> bytes:
    """The bytes of a key backup file."""
    rows = [[k.event_id, k.aggregate_type, k.aggregate_id, k.key_id, k.record] for k in keys]
    sealed = vault.aead("backup").seal(cbor.encode({"keys": rows}), _aad(header.store_id))
    return cbor.encode(
        {
            "magic": KEY_BACKUP_MAGIC,
            "v": KEY_BACKUP_FORMAT,
            "store": header.store_id,
            "vault": header.to_bytes(),
            "keys": sealed,
        }
    )


def _parse(data: bytes, path: Path) -> tuple[VaultHeader, bytes]:
    try:
        obj = cbor.decode(data, max_size=MAX_KEY_BACKUP_BYTES)
    except EncodingError as exc:
        raise BackupError(f"{path} is not a MO Local key backup (unreadable or truncated)") from exc
    if not isinstance(obj, dict) or obj.get("magic") != KEY_BACKUP_MAGIC:
        raise BackupError(f"{path} is not a MO Local key backup")
    if obj.get("v") != KEY_BACKUP_FORMAT:
        raise BackupError(f"{path} has an unknown key backup format version")
    vault_bytes, sealed, store = obj.get("vault"), obj.get("keys"), obj.get("store")
    if not (
        isinstance(vault_bytes, bytes) and isinstance(sealed, bytes) and isinstance(store, str)
    ):
        raise BackupError(f"{path} is a damaged key backup")
    try:
        header = VaultHeader.from_bytes(vault_bytes)
    except CryptoError as exc:
        raise BackupError(f"{path} is a damaged key backup (vault header)") from exc
    if header.store_id != store:
        raise BackupError(f"{path} is a damaged key backup (store mismatch)")
    return header, sealed


def read_key_backup_header(path: Path) -> VaultHeader:
    """The vault header of a key backup, without unlocking anything."""
    return _parse(_read(path), path)[0]


def open_key_backup(
    path: Path, *, passphrase: str | None = None, recovery_key: str | None = None
) -> KeyBackup:
    """Open a key backup with the passphrase or the recovery key.

    A wrong secret raises `UnlockFailed`; a damaged or tampered file `BackupError`.
    """
    header, sealed = _parse(_read(path), path)
    if recovery_key is not None:
        vault = unlock_with_recovery_key(header, recovery_key)
    elif passphrase is not None:
        vault = unlock_with_passphrase(header, passphrase)
    else:
        raise BackupError("opening a key backup needs the passphrase or the recovery key")
    try:
        body = cbor.decode(
            vault.aead("backup").open(sealed, _aad(header.store_id)), max_size=MAX_KEY_BACKUP_BYTES
        )
    except CryptoError as exc:
        vault.lock()
        raise BackupError(f"{path} failed authentication (tampered or damaged)") from exc
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list):
        vault.lock()
        raise BackupError(f"{path} is a damaged key backup")
    records: list[NewEvent] = []
    for row in keys:
        if not (
            isinstance(row, list)
            and len(row) == 5
            and all(isinstance(x, str) for x in row[:4])
            and isinstance(row[4], bytes)
        ):
            vault.lock()
            raise BackupError(f"{path} is a damaged key backup")
        records.append(NewEvent(row[0], "key", row[1], row[2], 0, row[3], row[4]))
    return KeyBackup(header, vault, records)


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_BACKUP_BYTES:
            raise BackupError(f"{path} is too large to be a key backup")
        return path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from exc


def write_private_atomically(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner, replacing `path` in one rename."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _private_temp(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.fchmod(fd, 0o600)
    os.close(fd)
    try:
        yield Path(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def copy_database(source: Path, out: Path) -> None:
    """A consistent copy of a SQLite store through the backup API, owner-only, atomic.

    The source is opened read-only without the store's lock, so a copy can be
    taken while another process holds the store (WAL readers never block).
    """
    out = out.resolve()
    with _private_temp(out) as tmp:
        try:
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot open {source} for a backup") from exc
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                row = dst.execute("PRAGMA quick_check").fetchone()
                if row is None or row[0] != "ok":
                    raise BackupError(f"the copy of {source} failed its integrity check")
            finally:
                dst.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(
                f"{source} could not be copied: it looks damaged; run `mo doctor`"
            ) from exc
        finally:
            src.close()
        os.replace(tmp, out)
    _fsync_dir(out.parent)


def database_store_id(path: Path) -> str:
    """The store id recorded in a database file (read-only, no lock)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise BackupError(f"{path} is not a SQLite database")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        finally:
            conn.close()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from exc
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable MO Local database") from exc
    if row is None or not isinstance(row[0], bytes | str):
        raise BackupError(f"{path} is not a MO Local database")
    value = row[0]
    return value.decode() if isinstance(value, bytes) else value
