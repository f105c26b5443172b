"""The single-writer lock (INV-007): an exclusive `flock` on a file next to the database.

`flock` locks belong to an open file description, so they are released by the
kernel when the holder exits or is killed; a stale lock file never blocks anyone.
A second open in the same process conflicts too, which is what we want.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mo_local.store.errors import StoreBusy, StoreError

_PID_BYTES = 32


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    # The holder writes its pid just after locking; an empty file means we raced it.
    return int(text) if text.isdigit() else None


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open lock file {path}: {exc.strerror}") from None


class StoreLock:
    """An exclusive lock on a store's lock file, held until `release`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path) -> StoreLock:
        """Take the lock without waiting; StoreBusy(pid of the holder) if someone has it."""
        fd = _open(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StoreBusy(pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        """True until released."""
        return self._fd is not None

    def release(self) -> None:
        """Forget our pid and drop the lock; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"StoreLock(path={str(self.path)!r}, held={self.held})"


def lock_holder(path: Path) -> int | None:
    """The pid recorded in the lock file at `path` if the lock is currently held, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot open lock file {path}: {exc.strerror}") from None
    try:
        try:
            # A shared probe lock, dropped at once; it fails only while a writer holds the file.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
