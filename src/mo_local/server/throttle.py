"""Login throttling: exponential lockout per (email, client address) after repeated attempts.

An attempt counts when it starts, not when it fails, so a burst of parallel guesses
cannot slip past the limit while their Argon2 verifications are still running; a
successful login clears the count. State lives in the process (see docs: several
processes multiply the budget by their number, Argon2 still bounds the rate).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from mo_local.server.errors import TooManyAttempts
from mo_local.server.settings import LoginThrottleSettings


@dataclass
class _Attempts:
    count: int
    last_at: float
    locked_until: float


class LoginThrottle:
    """Counts login attempts and refuses them with `TooManyAttempts` while locked out."""

    def __init__(
        self, settings: LoginThrottleSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Attempts] = OrderedDict()

    def begin(self, email: str, client: str) -> None:
        """Record an attempt, or raise `TooManyAttempts` (with the wait) while locked out."""
        key = _key(email, client)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.last_at > self._settings.forget_after_seconds:
                entry = None
            if entry is not None and entry.locked_until > now:
                raise TooManyAttempts(max(1, math.ceil(entry.locked_until - now)))
            if entry is None:
                entry = _Attempts(count=0, last_at=now, locked_until=0.0)
            entry.count += 1
            entry.last_at = now
            excess = entry.count - self._settings.max_attempts
            if excess >= 0:
                lockout = self._settings.base_lockout_seconds * (2.0 ** min(excess, 32))
                entry.locked_until = now + min(lockout, self._settings.max_lockout_seconds)
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._settings.max_tracked_keys:
                self._entries.popitem(last=False)

    def succeeded(self, email: str, client: str) -> None:
        """Forget the attempts of a successful login."""
        with self._lock:
            self._entries.pop(_key(email, client), None)


def _key(email: str, client: str) -> bytes:
    # Hashed so that emails are not kept in memory longer than a request.
    return hashlib.sha256(f"{email}\x00{client}".encode()).digest()
