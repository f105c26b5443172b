"""The one place where errors become exit codes and messages (CLI.md)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass

from mo_local.backup import BackupError, BackupMismatch
from mo_local.cli.context import UsageError
from mo_local.client import ClientError, Locked, NoStore, PendingEvents, StoreExists
from mo_local.crypto.errors import CryptoError, UnlockFailed, WeakKdfParameters
from mo_local.domain.errors import ConcurrencyError, Conflict, NotFound, ValidationError
from mo_local.eventlog import EventLogError
from mo_local.store.errors import ConcurrencyError as StoreConcurrencyError
from mo_local.store.errors import StoreBusy, StoreCorrupt, StoreError
from mo_local.sync.errors import SyncError

OK, UNEXPECTED, USAGE, INVALID, NOT_FOUND, CONFLICT, AUTH, BUSY, REMOTE = range(9)

log = logging.getLogger("mo_local.cli")


@dataclass(frozen=True)
class Failure:
    """An error as the user sees it."""

    exit_code: int
    code: str
    message: str
    fields: dict[str, str]


def classify(exc: BaseException) -> Failure:
    """Map an exception to an exit code and a secret-free message."""
    if isinstance(exc, SyncError):
        return Failure(exc.exit_code, exc.code, str(exc), {})
    if isinstance(exc, BackupMismatch):
        return Failure(CONFLICT, "backup_mismatch", str(exc), {})
    if isinstance(exc, BackupError):
        return Failure(INVALID, "bad_backup", str(exc), {})
    if isinstance(exc, PendingEvents):
        return Failure(CONFLICT, "pending_events", str(exc), {"pending": str(exc.count)})
    if isinstance(exc, UsageError):
        return Failure(USAGE, "usage", str(exc), {})
    if isinstance(exc, ValidationError):
        return Failure(INVALID, "invalid", str(exc), dict(exc.fields))
    if isinstance(exc, WeakKdfParameters):
        return Failure(INVALID, "weak_kdf", str(exc), {})
    if isinstance(exc, NotFound | NoStore):
        return Failure(NOT_FOUND, "not_found", str(exc), {})
    if isinstance(exc, ConcurrencyError | StoreConcurrencyError):
        return Failure(CONFLICT, "stale_version", str(exc), {})
    if isinstance(exc, Conflict | StoreExists):
        return Failure(CONFLICT, "conflict", str(exc), {})
    if isinstance(exc, UnlockFailed):
        return Failure(AUTH, "unlock_failed", str(exc), {})
    if isinstance(exc, StoreBusy):
        return Failure(BUSY, "store_busy", str(exc), {})
    if isinstance(exc, StoreCorrupt):
        return Failure(UNEXPECTED, "store_corrupt", str(exc), {})
    if isinstance(exc, Locked | ClientError | StoreError | EventLogError | CryptoError):
        return Failure(UNEXPECTED, type(exc).__name__.lower(), str(exc), {})
    # Unknown exceptions may carry anything in their message: show only the type.
    return Failure(
        UNEXPECTED, "unexpected", f"unexpected {type(exc).__name__}; run `mo doctor`", {}
    )


def report(failure: Failure, as_json: bool) -> None:
    """Print the error on stderr in the requested form."""
    if as_json:
        body = {
            "error": {"code": failure.code, "message": failure.message, "fields": failure.fields}
        }
        sys.stderr.write(json.dumps(body, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"error: {failure.message}\n")
        for name, rule in failure.fields.items():
            sys.stderr.write(f"  {name}: {rule}\n")
