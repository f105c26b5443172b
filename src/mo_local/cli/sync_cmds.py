"""Sync commands: `mo remote signup|login|logout|status`, `mo sync [--watch]|reset`, `mo join`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from rich.console import Console

from mo_local.cli.context import Context, UsageError, current
from mo_local.client import Client, StoreExists, database_path
from mo_local.crypto.vault import VaultHeader
from mo_local.sync import session
from mo_local.sync.engine import SyncResult
from mo_local.sync.remote import RemoteState
from mo_local.sync.transport import Transport


def _transport(url: str) -> Transport:
    try:
        return Transport(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _conflicts(client: Client) -> int:
    """Conflicts recorded by derived state (opening it catches up with pulled events)."""
    return len(client.conflicts())


def _adopt_or_note(ctx: Context, client: Client, vault: session.VaultSync) -> None:
    if vault.action != "newer_on_server" or vault.newer is None:
        return
    adopt = getattr(client, "adopt_vault_header", None)
    if callable(adopt):
        adopt(vault.newer)
        ctx.say(
            f"Adopted vault revision {vault.revision} from the server "
            "(its passphrase unlocks this device from now on)."
        )
    else:
        ctx.say(
            f"The server holds a newer vault (revision {vault.revision}); "
            "it was not adopted by this version."
        )


@contextmanager
def _progress(ctx: Context, text: str, *, spinner: bool = True) -> Iterator[None]:
    """A spinner on stderr for people; nothing with --json or without a terminal.

    Without `spinner` the text is printed once instead: a spinner runs a thread,
    and a pull forks its record verifier only in a single-threaded process.
    """
    console = Console(stderr=True)
    if ctx.json or not console.is_terminal:
        yield
        return
    if not spinner:
        console.print(text)
        yield
        return
    with console.status(text):
        yield


@dataclass
class _Totals:
    pushed: int = 0
    pulled: int = 0
    head: int = 0
    rounds: int = 0

    def add(self, result: SyncResult) -> None:
        self.pushed += result.pushed
        self.pulled += result.pulled
        self.head = result.head
        self.rounds += 1


def _emit_sync(ctx: Context, client: Client, totals: _Totals) -> None:
    doc = {
        "pushed": totals.pushed,
        "pulled": totals.pulled,
        "head": totals.head,
        "conflicts": _conflicts(client),
    }
    ctx.emit(
        doc,
        f"Pushed {doc['pushed']}, pulled {doc['pulled']} events; "
        f"server head {doc['head']}; {doc['conflicts']} conflict(s).",
    )


def register(app: typer.Typer) -> None:
    """Add the remote, sync and join commands to `mo`."""
    remote = typer.Typer(help="Connect this store to a sync server.", no_args_is_help=True)
    app.add_typer(remote, name="remote")
    sync = typer.Typer(help="Sync with the server (pull, rebase, push).")
    app.add_typer(sync, name="sync")

    def connect(typer_ctx: typer.Context, url: str, email: str, new_account: bool) -> None:
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        password = ctx.account_password()
        with _transport(url) as transport, _progress(ctx, "Connecting…"):
            action = session.signup if new_account else session.login
            account = action(client, transport, email, password)
        if account.switched_server:
            ctx.say(
                "This store synced with another server before: everything will be pushed "
                "to this one at the next `mo sync`."
            )
        if account.vault is not None:
            _adopt_or_note(ctx, client, account.vault)
        ctx.emit(
            {"account_id": account.account_id, "url": account.url},
            f"{'Signed up' if new_account else 'Logged in'} at {account.url} "
            f"(account {account.account_id}). Run `mo sync` to sync.",
        )

    @remote.command("signup")
    def remote_signup(
        typer_ctx: typer.Context,
        url: str = typer.Argument(..., help="The sync server, e.g. https://sync.example.org"),
        email: str = typer.Option(..., "--email", help="The account's email."),
    ) -> None:
        """Create an account on a sync server and connect this store to it."""
        connect(typer_ctx, url, email, new_account=True)

    @remote.command("login")
    def remote_login(
        typer_ctx: typer.Context,
        url: str = typer.Argument(..., help="The sync server."),
        email: str = typer.Option(..., "--email", help="The account's email."),
    ) -> None:
        """Log in to a sync server and connect this store to it."""
        connect(typer_ctx, url, email, new_account=False)

    @remote.command("logout")
    def remote_logout(typer_ctx: typer.Context) -> None:
        """Revoke the session on the server and forget it here."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        revoked = session.logout(client, _transport)
        if not revoked:
            ctx.say(
                "The server could not be told; the session was forgotten here "
                "and expires on the server."
            )
        ctx.emit({"ok": True}, "Logged out.")

    @remote.command("status")
    def remote_status(typer_ctx: typer.Context) -> None:
        """The remote of this store; needs no passphrase."""
        ctx = current(typer_ctx)
        status = session.remote_status(ctx.open().store)
        ctx.emit(
            {"url": status.url, "account_id": status.account_id, "logged_in": status.logged_in},
            "no remote"
            if status.url is None
            else f"{status.url} (account {status.account_id}): "
            f"{'logged in' if status.logged_in else 'logged out'}; "
            f"cursor {status.cursor}, last head {status.last_head}",
        )

    @sync.callback(invoke_without_command=True)
    def sync_main(
        typer_ctx: typer.Context,
        watch: bool = typer.Option(False, "--watch", help="Keep syncing as changes arrive."),
        rounds: int | None = typer.Option(
            None, "--rounds", min=1, help="With --watch: stop after this many rounds."
        ),
        wait: float = typer.Option(
            25.0, "--wait", min=0.0, help="With --watch: seconds each long-poll waits."
        ),
    ) -> None:
        """Pull, rebase and push; exit 5 naming server_behind if the server lost history."""
        if typer_ctx.invoked_subcommand is not None:
            return
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        totals = _Totals()
        with session.open_transport(client, _transport) as transport:
            notify = client.refresh
            if not watch:
                with _progress(ctx, "Syncing…"):
                    outcome = session.sync_once(client, transport, notify)
                _adopt_or_note(ctx, client, outcome.vault)
                totals.add(outcome.result)
                _emit_sync(ctx, client, totals)
                return

            def on_round(result: SyncResult) -> None:
                totals.add(result)
                if result.pushed or result.pulled:
                    ctx.say(f"pushed {result.pushed}, pulled {result.pulled}, head {result.head}")

            ctx.say("Watching for changes (Ctrl-C to stop)…")
            try:
                session.watch(
                    client,
                    transport,
                    stop=lambda: rounds is not None and totals.rounds >= rounds,
                    on_remote_events=notify,
                    on_round=on_round,
                    wait=wait,
                )
            except KeyboardInterrupt:
                pass
            _emit_sync(ctx, client, totals)

    @sync.command("reset")
    def sync_reset(typer_ctx: typer.Context) -> None:
        """Forget sync mappings so the next sync pushes everything again (server lost data)."""
        ctx = current(typer_ctx)
        pending = RemoteState(ctx.open().store).reset()
        ctx.emit(
            {"pending": pending}, f"{pending} events are pending; run `mo sync` to push them again."
        )

    @app.command("join")
    def join(
        typer_ctx: typer.Context,
        url: str = typer.Argument(..., help="The sync server."),
        email: str = typer.Option(..., "--email", help="The account's email."),
        store: str | None = typer.Option(
            None, "--store", help="The store to join if the account has several."
        ),
        recovery: bool = typer.Option(
            False,
            "--recovery-key",
            help="Forgot the passphrase: unlock with the recovery key (MO_RECOVERY_KEY) "
            "and set a new passphrase (MO_NEW_PASSPHRASE), uploaded at the next sync.",
        ),
    ) -> None:
        """New device: log in, fetch the vault, unlock, pull (building derived state)."""
        ctx = current(typer_ctx)
        if database_path(ctx.home).exists():
            raise StoreExists(f"{ctx.home} already holds a store")
        if recovery:
            recovery_key: str | None = ctx.recovery_key()
            passphrase = ctx.new_passphrase()
        else:
            recovery_key = None
            passphrase = ctx.passphrase()
        password = ctx.account_password()

        def create(header: VaultHeader) -> Client:
            if recovery_key is not None:
                return Client.create_from_header(ctx.home, header, recovery_key=recovery_key)
            return Client.create_from_header(ctx.home, header, passphrase)

        with _transport(url) as transport, _progress(ctx, "Joining…", spinner=False):
            client, events = session.join(transport, email, password, create, store)
        ctx._client = client
        if recovery_key is not None:
            client.change_passphrase(passphrase)
        ctx.emit(
            {"store_id": client.store_id, "events": events},
            f"Joined store {client.store_id}: {events} events pulled into {ctx.home}.",
        )
