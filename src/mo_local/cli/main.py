"""Entry point of the `mo` command: global flags, sub-command groups, exit codes."""

from __future__ import annotations

import logging
import os
import sys

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.exceptions import Abort, Exit

from mo_local.cli import domain_cmds, recovery_cmds, store_cmds, sync_cmds
from mo_local.cli.context import UsageError, split_global_flags
from mo_local.cli.errors import USAGE, classify, report


def build_app() -> typer.Typer:
    """Assemble the command tree."""
    app = typer.Typer(
        name="mo",
        help="MO Local: goals and projects, end-to-end encrypted, local first.\n\n"
        "Global flags (anywhere on the line): --home DIR (env MO_HOME), --json, "
        "--passphrase-file FILE. Secrets come from prompts or the environment: "
        "MO_PASSPHRASE, MO_NEW_PASSPHRASE, MO_RECOVERY_KEY, MO_ACCOUNT_PASSWORD.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    store_cmds.register(app)
    domain_cmds.register(app)
    recovery_cmds.register(app)
    sync_cmds.register(app)
    return app


def run(argv: list[str]) -> int:
    """Run `mo` with arguments; returns the exit code."""
    logging.basicConfig(
        level=os.environ.get("MO_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s %(message)s",
    )
    try:
        ctx, rest = split_global_flags(argv)
    except UsageError as exc:
        report(classify(exc), "--json" in argv)
        return USAGE
    app = build_app()
    try:
        # Without standalone mode click returns the code of a raised Exit.
        code = app(args=rest, prog_name="mo", obj=ctx, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except Exit as exc:
        return int(exc.exit_code)
    except Abort:
        report(classify(UsageError("aborted")), ctx.json)
        return USAGE
    except NoArgsIsHelpError:
        return USAGE  # the help text was printed already
    except ClickException as exc:
        # typer 0.29 vendors click; its parser errors are these, not click's own.
        report(classify(UsageError(exc.format_message())), ctx.json)
        return USAGE
    except Exception as exc:  # noqa: BLE001 - every error becomes an exit code here
        failure = classify(exc)
        report(failure, ctx.json)
        return failure.exit_code
    finally:
        ctx.close()


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
