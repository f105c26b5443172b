"""Escape hatches: backups, restore, wipe (DESIGN.md §9)."""

from __future__ import annotations

from pathlib import Path

import typer

from mo_local.cli.context import UsageError, current
from mo_local.client import Client, NoStore, backup_database, database_path


def register(app: typer.Typer) -> None:
    """Add backup, restore and wipe to `mo`."""
    backup = typer.Typer(help="Encrypted key backups and database copies.", no_args_is_help=True)
    app.add_typer(backup, name="backup")

    @backup.command("keys")
    def backup_keys(
        typer_ctx: typer.Context, out: Path = typer.Option(..., "--out", help="File to write.")
    ) -> None:
        """Write an encrypted key backup (opens with the passphrase or recovery key)."""
        ctx = current(typer_ctx)
        path = ctx.unlocked().backup_keys(out)
        ctx.emit({"path": str(path)}, f"Key backup written to {path} (owner-only).")

    @backup.command("db")
    def backup_db(
        typer_ctx: typer.Context, out: Path = typer.Option(..., "--out", help="File to write.")
    ) -> None:
        """Write a consistent copy of the database (works while another command runs)."""
        ctx = current(typer_ctx)
        if not database_path(ctx.home).exists():
            raise NoStore(f"no store in {ctx.home}")
        path = backup_database(ctx.home, out)
        ctx.emit({"path": str(path)}, f"Database copy written to {path} (owner-only).")

    @app.command()
    def restore(
        typer_ctx: typer.Context,
        keys: Path = typer.Option(..., "--keys", help="Key backup file."),
        db: Path | None = typer.Option(None, "--db", help="Database backup file."),
        recovery: bool = typer.Option(
            False,
            "--recovery-key",
            help="Open the key backup with the recovery key (MO_RECOVERY_KEY or a prompt).",
        ),
    ) -> None:
        """Set up this home as a new device of a store from backups, then rebuild."""
        ctx = current(typer_ctx)
        if database_path(ctx.home).exists():
            raise UsageError(f"{ctx.home} already holds a store; restore into an empty home")
        if recovery:
            client = Client.restore(ctx.home, keys, db, recovery_key=ctx.recovery_key())
        else:
            client = Client.restore(ctx.home, keys, db, passphrase=ctx.passphrase())
        ctx._client = client
        events = client.rebuild()
        ctx.emit(
            {"store_id": client.store_id, "events": events},
            f"Restored store {client.store_id} with {events} events.",
        )

    @app.command()
    def wipe(
        typer_ctx: typer.Context,
        yes: bool = typer.Option(False, "--yes", help="Confirm the deletion."),
        force: bool = typer.Option(False, "--force", help="Delete even unsynced (pending) events."),
    ) -> None:
        """Delete this home's local store (refuses while unsynced events exist)."""
        ctx = current(typer_ctx)
        if not yes:
            raise UsageError("wipe deletes the local store; confirm with --yes")
        ctx.open().wipe(force=force)
        ctx.emit({"ok": True}, f"Deleted the local store in {ctx.home}.")
