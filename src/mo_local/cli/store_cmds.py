"""Store and key commands: init, status, passphrase, recover, doctor."""

from __future__ import annotations

import typer

from mo_local.cli.context import current
from mo_local.client import Check, Client, ClientError, doctor_checks
from mo_local.crypto.kdf import DEFAULT_KDF, KdfParams
from mo_local.store.errors import StoreError


def register(app: typer.Typer) -> None:
    """Add the store and key commands to `mo`."""
    passphrase = typer.Typer(help="Manage the vault passphrase.", no_args_is_help=True)
    app.add_typer(passphrase, name="passphrase")

    @app.command()
    def init(
        typer_ctx: typer.Context,
        kdf_memory_kib: int = typer.Option(DEFAULT_KDF.memory_kib, help="Argon2id memory (KiB)."),
        kdf_iterations: int = typer.Option(DEFAULT_KDF.iterations, help="Argon2id passes."),
    ) -> None:
        """Create a new store and vault; shows the recovery key once."""
        ctx = current(typer_ctx)
        secret = ctx.new_passphrase()
        client, recovery_key = Client.create(
            ctx.home, secret, KdfParams(kdf_memory_kib, kdf_iterations, DEFAULT_KDF.parallelism)
        )
        ctx._client = client
        ctx.emit(
            {
                "store_id": client.store_id,
                "device_id": client.device_id,
                "recovery_key": recovery_key,
            },
            f"Created store {client.store_id} in {ctx.home}\n\n"
            f"Recovery key (shown once — write it down and keep it safe):\n\n    {recovery_key}\n",
        )

    @app.command()
    def status(typer_ctx: typer.Context) -> None:
        """Where things stand; needs no passphrase."""
        ctx = current(typer_ctx)
        info = ctx.open().status()
        ctx.emit(info, "\n".join(f"{k:>10}: {'-' if v is None else v}" for k, v in info.items()))

    @passphrase.command("change")
    def passphrase_change(typer_ctx: typer.Context) -> None:
        """Re-wrap the vault key under a new passphrase (no data is re-encrypted)."""
        ctx = current(typer_ctx)
        client = ctx.unlocked()
        client.change_passphrase(ctx.new_passphrase())
        ctx.emit({"ok": True}, "Passphrase changed.")

    @app.command()
    def recover(
        typer_ctx: typer.Context,
        rotate: bool = typer.Option(
            False, "--rotate-recovery-key", help="Also issue a new recovery key (shown once)."
        ),
    ) -> None:
        """Forgot the passphrase: unlock with the recovery key and set a new passphrase."""
        ctx = current(typer_ctx)
        client = ctx.open()
        client.unlock_with_recovery_key(ctx.recovery_key())
        client.change_passphrase(ctx.new_passphrase())
        result: dict[str, object] = {"ok": True}
        human = "New passphrase set."
        if rotate:
            result["recovery_key"] = client.rotate_recovery_key()
            human += f"\n\nNew recovery key (shown once):\n\n    {result['recovery_key']}\n"
        ctx.emit(result, human)

    @app.command()
    def doctor(typer_ctx: typer.Context) -> None:
        """Diagnostics for support, without secrets or domain text."""
        ctx = current(typer_ctx)
        checks: list[Check]
        try:
            checks = ctx.open().doctor()
        except (StoreError, ClientError) as exc:
            checks = doctor_checks(ctx.home, None, str(exc))
        ok = all(c.ok or c.advisory for c in checks)
        ctx.emit(
            {
                "ok": ok,
                "checks": [
                    {"name": c.name, "ok": c.ok, "detail": c.detail, "advisory": c.advisory}
                    for c in checks
                ],
            },
            "\n".join(
                f"{'ok  ' if c.ok else ('WARN' if c.advisory else 'BAD ')} {c.name:<10} {c.detail}"
                for c in checks
            ),
        )
        if not ok:
            raise typer.Exit(1)
