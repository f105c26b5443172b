"""Typed errors of the sync client.

Each error carries the `mo` exit code and the stable error code it maps to
(CLI.md), so the CLI can classify every one of them in one line. Messages carry
statuses, problem codes, ids and numbers — never tokens, passwords, record bytes
or domain text (INV-015).
"""

from __future__ import annotations

CONFLICT_EXIT = 5
AUTH_EXIT = 6
REMOTE_EXIT = 8
NOT_FOUND_EXIT = 4
USAGE_EXIT = 2
UNEXPECTED_EXIT = 1


class SyncError(Exception):
    """Base class of every error the sync client raises on purpose."""

    exit_code: int = UNEXPECTED_EXIT
    code: str = "sync_error"


class RemoteUnreachable(SyncError):
    """The server could not be reached (network error, timeout, gateway down)."""

    exit_code = REMOTE_EXIT
    code = "remote_unreachable"


class RemoteRefused(SyncError):
    """The server answered with an error this client does not handle specially."""

    exit_code = REMOTE_EXIT
    code = "remote_refused"

    def __init__(
        self, status: int, problem_code: str, detail: str = "", *, retry_after: int | None = None
    ) -> None:
        self.status = status
        self.problem_code = problem_code
        # Seconds the server asked to wait (its Retry-After), if it said.
        self.retry_after = retry_after
        text = f"the sync server refused the request ({status} {problem_code})"
        if retry_after is not None:
            text += f"; try again in {retry_after} s"
        super().__init__(f"{text}: {detail}" if detail else text)


class AuthRejected(SyncError):
    """The server rejected the credentials or the session token (401)."""

    exit_code = AUTH_EXIT
    code = "auth_rejected"

    def __init__(self, problem_code: str = "unauthorized") -> None:
        self.problem_code = problem_code
        if problem_code == "invalid_credentials":
            message = "the sync server rejected the email or account password"
        else:
            message = (
                f"the sync server rejected the session ({problem_code}); "
                "log in again with `mo remote login URL --email E`"
            )
        super().__init__(message)


class ServerAhead(SyncError):
    """The server holds records this device has not pulled yet (409 server_ahead)."""

    exit_code = CONFLICT_EXIT
    code = "server_ahead"

    def __init__(self, head: int) -> None:
        self.head = head
        super().__init__(f"server_ahead: the server is at head {head}; pull first")


class ServerBehind(SyncError):
    """The server has less history than this device saw: it lost data or was restored."""

    exit_code = CONFLICT_EXIT
    code = "server_behind"

    def __init__(self, head: int, seen: int | None = None, changed_at: int | None = None) -> None:
        self.head = head
        self.seen = seen
        self.changed_at = changed_at
        if changed_at is not None:
            what = (f"the sync server holds another event at sequence {changed_at} than this "
                    "device synced there; its history was replaced or restored from a backup.")
        else:
            seen_text = f" than this device saw ({seen})" if seen is not None else ""
            what = (f"the sync server is at head {head}, behind what this device "
                    f"knows{seen_text}; it lost history or was restored from a backup.")
        super().__init__(f"server_behind: {what} "
                         "Run `mo sync reset` to push everything this device has again.")


class VaultConflict(SyncError):
    """The vault header on the server changed since it was read (compare-and-set lost)."""

    exit_code = CONFLICT_EXIT
    code = "vault_conflict"

    def __init__(self, revision: int | None = None) -> None:
        self.revision = revision
        super().__init__("vault_conflict: the vault on the server changed meanwhile; sync again")


class SyncCorrupt(SyncError):
    """A pulled record failed authentication or contradicts local history; sync stopped there."""

    exit_code = UNEXPECTED_EXIT
    code = "sync_corrupt"

    def __init__(self, reason: str, seq: int | None = None, event_id: str | None = None) -> None:
        self.reason = reason
        self.seq = seq
        self.event_id = event_id
        where = ""
        if seq is not None:
            where += f" at sequence {seq}"
        if event_id is not None:
            where += f" (event {event_id})"
        super().__init__(
            f"sync stopped: the record{where} {reason}; nothing after it was applied"
        )


class NotConnected(SyncError):
    """This store has no remote, or no session token to use it."""

    exit_code = AUTH_EXIT
    code = "not_logged_in"


class NoRemoteStore(SyncError):
    """The account holds no store to join."""

    exit_code = NOT_FOUND_EXIT
    code = "no_remote_store"


class StoreChoiceNeeded(SyncError):
    """The account holds several stores; the caller must name one."""

    exit_code = USAGE_EXIT
    code = "store_choice_needed"

    def __init__(self, store_ids: list[str]) -> None:
        self.store_ids = store_ids
        super().__init__(
            f"the account holds {len(store_ids)} stores ({', '.join(store_ids)}); "
            "choose one with --store ID"
        )


class IdentityMismatch(SyncError):
    """The server offered data of another store or vault than this one."""

    exit_code = UNEXPECTED_EXIT
    code = "identity_mismatch"
