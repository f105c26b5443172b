"""Drive the real `mo` command in subprocesses, as scripts and people do (helpers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MO = str(Path(sys.executable).with_name("mo"))
PASSPHRASE = "tests: a passphrase nobody uses 7f3e"


@dataclass
class Result:
    """What one `mo` run printed and returned."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> object:
        """stdout parsed as the one JSON document --json promises."""
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, object]:
        """The JSON error object printed on stderr with --json."""
        body = json.loads(self.stderr)
        assert isinstance(body, dict)
        error = body["error"]
        assert isinstance(error, dict)
        return error


@dataclass
class Mo:
    """Runs `mo` against one home with secrets from the environment."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, check: bool = False, **extra_env: str) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MO_")}
        env.update({"MO_HOME": str(self.home), "MO_PASSPHRASE": PASSPHRASE,
                    "MO_NEW_PASSPHRASE": PASSPHRASE, **self.env, **extra_env})
        done = subprocess.run([MO, *args], env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, check=False)
        result = Result(done.returncode, done.stdout, done.stderr)
        if check:
            assert result.code == 0, f"mo {args[:2]} exited {result.code}: {result.stderr}"
        return result

    def ok(self, *args: str, **extra_env: str) -> object:
        """Run with --json, require exit 0, return the parsed document."""
        return self(*args, "--json", check=True, **extra_env).json

    def init(self) -> dict[str, object]:
        """A new store with cheap KDF parameters (the floor), for speed."""
        doc = self.ok("init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1")
        assert isinstance(doc, dict)
        return doc
