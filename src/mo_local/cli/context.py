"""Global flags of `mo`, output for people or for scripts, and secret sources."""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import typer

from mo_local.client import Client


class UsageError(Exception):
    """Bad use of the command line (exit 2)."""


@dataclass
class Context:
    """What every command needs: the home, the output mode and where secrets come from."""

    home: Path
    json: bool = False
    passphrase_file: Path | None = None
    _client: Client | None = field(default=None, repr=False)

    # -- output -----------------------------------------------------------------

    def emit(self, document: object, human: str | None = None) -> None:
        """Print one JSON document (with --json) or a line for people."""
        if self.json:
            sys.stdout.write(json.dumps(document, ensure_ascii=False, sort_keys=True) + "\n")
        elif human is not None:
            sys.stdout.write(human.rstrip("\n") + "\n")

    def say(self, text: str) -> None:
        """A note for people on stderr (never in --json mode's stdout)."""
        if not self.json:
            sys.stderr.write(text.rstrip("\n") + "\n")

    # -- secrets ----------------------------------------------------------------

    def passphrase(self) -> str:
        """The vault passphrase: --passphrase-file, MO_PASSPHRASE, or a prompt."""
        if self.passphrase_file is not None:
            try:
                text = self.passphrase_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(
                    f"cannot read the passphrase file {self.passphrase_file}: {exc.strerror}"
                ) from exc
            return text.rstrip("\r\n")
        env = os.environ.get("MO_PASSPHRASE")
        if env is not None:
            return env
        return prompt_secret("Passphrase: ")

    def new_passphrase(self) -> str:
        """A new passphrase: MO_NEW_PASSPHRASE, or asked twice."""
        env = os.environ.get("MO_NEW_PASSPHRASE")
        if env is not None:
            return env
        first = prompt_secret("New passphrase: ")
        if first != prompt_secret("Repeat new passphrase: "):
            raise UsageError("the two passphrases differ")
        return first

    def recovery_key(self) -> str:
        """The recovery key: MO_RECOVERY_KEY or a prompt."""
        env = os.environ.get("MO_RECOVERY_KEY")
        if env is not None:
            return env
        return prompt_secret("Recovery key: ")

    def account_password(self) -> str:
        """The sync account password: MO_ACCOUNT_PASSWORD or a prompt."""
        env = os.environ.get("MO_ACCOUNT_PASSWORD")
        if env is not None:
            return env
        return prompt_secret("Account password: ")

    # -- the store --------------------------------------------------------------

    def open(self) -> Client:
        """Open the home's store, locked."""
        if self._client is None:
            self._client = Client.open(self.home)
        return self._client

    def unlocked(self) -> Client:
        """Open the home's store and unlock it with the passphrase."""
        client = self.open()
        if not client.unlocked:
            client.unlock(self.passphrase())
        return client

    def close(self) -> None:
        """Lock and release the store if this command opened it."""
        if self._client is not None:
            self._client.close()
            self._client = None


def current(typer_ctx: typer.Context) -> Context:
    """The global Context of the running `mo` command (set up by `cli.main.run`)."""
    obj = typer_ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


def prompt_secret(prompt: str) -> str:
    """Ask for a secret without echo; refuses when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        raise UsageError(
            f"no terminal to ask for a secret ({prompt.strip(': ')}); "
            "use the environment variable or file documented in `mo --help`"
        )
    return getpass.getpass(prompt)


def default_home() -> Path:
    """The platform's user data directory for `mo` unless MO_HOME says otherwise."""
    env = os.environ.get("MO_HOME")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("mo-local"))


def split_global_flags(argv: list[str]) -> tuple[Context, list[str]]:
    """Take --json, --home DIR and --passphrase-file FILE from anywhere before `--`."""
    rest: list[str] = []
    home: Path | None = None
    as_json = False
    passphrase_file: Path | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "--json":
            as_json = True
        elif arg in ("--home", "--passphrase-file"):
            if i + 1 >= len(argv):
                raise UsageError(f"{arg} needs a value")
            value = Path(argv[i + 1])
            if arg == "--home":
                home = value
            else:
                passphrase_file = value
            i += 1
        elif arg.startswith("--home="):
            home = Path(arg.split("=", 1)[1])
        elif arg.startswith("--passphrase-file="):
            passphrase_file = Path(arg.split("=", 1)[1])
        else:
            rest.append(arg)
        i += 1
    return Context(home or default_home(), as_json, passphrase_file), rest
