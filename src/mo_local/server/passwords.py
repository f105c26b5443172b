"""Argon2id password hashes (argon2-cffi), with a dummy verification for unknown accounts."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mo_local.server.settings import PasswordHashing


class PasswordVerifier:
    """Hashes and verifies account passwords; unknown accounts cost the same time as known ones."""

    def __init__(self, params: PasswordHashing) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
        )
        # Verified against when the email is unknown, so timing is no account oracle.
        self._dummy_hash: str = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        """A fresh Argon2id hash (PHC string) of a password."""
        result: str = self._hasher.hash(password)
        return result

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if the password matches; a None hash is verified against the dummy and fails."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        try:
            self._hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if a stored hash used weaker parameters than the current ones."""
        result: bool = self._hasher.check_needs_rehash(stored_hash)
        return result
