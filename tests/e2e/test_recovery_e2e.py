"""Recovery end to end (issue 5): real `mo` processes and a real `mo-server` process.

Passphrase-only join, recovery-key-only join, server data loss with `mo sync reset`,
and the secret-free diagnostics sweep over every output of those scenarios (INV-012,
INV-015).
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from e2e_support import Device, Server, build_scenario

from mo_local.client import Client

CANARY = "RECOVERYCANARY93d1"
PASSPHRASE = "unique passphrase 5b0e-c771"
ACCOUNT_PASSWORD = "unique account password 0a9f-31d4"
EMAIL = "recovery@example.org"


def _device(tmp_path: Path, name: str, passphrase: str = PASSPHRASE) -> Device:
    return Device(tmp_path / name, passphrase, ACCOUNT_PASSWORD, EMAIL)


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret),
            base64.urlsafe_b64encode(secret).rstrip(b"="), base64.b64encode(secret).rstrip(b"=")]


def _key_material(home: Path, passphrase: str) -> list[bytes]:
    client = Client.open(home)
    try:
        client.unlock(passphrase)
        client.rebuild()
        return [bytes(client.vault._key), *(bytes(d.key) for d in client.log._deks_by_id.values())]
    finally:
        client.close()


def test_inv012_passphrase_only_and_recovery_key_only_new_devices(
    tmp_path: Path,
) -> None:
    """INV-012: a fresh home joins with the passphrase; another with only the recovery key."""
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server.log").start()
    try:
        d1 = _device(tmp_path, "d1")
        created = d1.init()
        build_scenario(d1, CANARY)
        d1.ok("remote", "signup", server.url, "--email", EMAIL)
        d1.ok("sync")

        d2 = _device(tmp_path, "d2")
        joined = d2.ok("join", server.url, "--email", EMAIL)
        assert isinstance(joined, dict) and joined["events"] > 0
        assert d2.views() == d1.views()

        # Recovery key only: no passphrase known; a new one is set on the way in.
        d3 = _device(tmp_path, "d3", passphrase="a brand new passphrase 77")
        d3.ok("join", server.url, "--email", EMAIL, "--recovery-key",
              MO_RECOVERY_KEY=str(created["recovery_key"]))
        assert d3.views() == d1.views()
        assert d3("goal", "list", "--json", MO_PASSPHRASE=PASSPHRASE).code == 6
        d3.ok("sync")  # uploads the new vault revision, endorsed under K_vault
        # Device 1 adopts the newer vault at its next sync: only the new passphrase works now.
        d1.ok("sync")
        assert d1("goal", "list", "--json").code == 6
        assert d1.ok("goal", "list", MO_PASSPHRASE="a brand new passphrase 77") == \
            d3.ok("goal", "list")
    finally:
        server.stop()


def test_server_data_loss_is_reported_then_reset_and_converged(tmp_path: Path) -> None:
    """The server is restored from an older copy: server_behind, reset, re-push, converge."""
    db = tmp_path / "server.db"
    server = Server(f"sqlite:///{db}", tmp_path / "server.log").start()
    d1, d2 = _device(tmp_path, "d1"), _device(tmp_path, "d2")
    try:
        d1.init()
        ids = build_scenario(d1, CANARY)
        d1.ok("remote", "signup", server.url, "--email", EMAIL)
        d1.ok("sync")
        server.stop()
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                shutil.copy(f"{db}{suffix}", tmp_path / f"old.db{suffix}")
        server.start()
        d2.ok("join", server.url, "--email", EMAIL)
        d1.ok("goal", "add", f"{CANARY} after backup", "--slice", "work", "--priority", "must",
              "--month", "2027-06")
        d1.ok("sync")
        d2.ok("project", "edit", ids["project"], "--name", f"{CANARY} renamed on d2")
        d2.ok("sync")
        d1.ok("sync")
        before = d1.views()
        assert d2.views() == before

        server.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
            if (tmp_path / f"old.db{suffix}").exists():
                shutil.copy(tmp_path / f"old.db{suffix}", f"{db}{suffix}")
        server.start()

        behind = d1("sync", "--json")
        assert behind.code == 5
        assert "server_behind" in behind.stderr
        reset = d1.ok("sync", "reset")
        assert isinstance(reset, dict) and reset["pending"] > 0
        d1.ok("sync")
        second = d2("sync", "--json")
        if second.code == 5:  # d2 saw the lost history too: it resets and re-pushes as well
            assert "server_behind" in second.stderr
            d2.ok("sync", "reset")
            d2.ok("sync")
        d1.ok("sync")
        assert d1.views() == before
        assert d2.views() == before
        status = d1.ok("status")
        assert isinstance(status, dict) and status["pending"] == 0
    finally:
        server.stop()


def test_inv015_diagnostics_errors_and_debug_logs_are_secret_free(tmp_path: Path) -> None:
    """INV-015: doctor, every error message and DEBUG logs hold no secret or domain text."""
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server.log").start()
    d1, d2 = _device(tmp_path, "d1"), _device(tmp_path, "d2")
    try:
        created = d1.init()
        recovery_key = str(created["recovery_key"])
        build_scenario(d1, CANARY)
        d1.ok("remote", "signup", server.url, "--email", EMAIL)
        d1.ok("sync")
        d2.ok("join", server.url, "--email", EMAIL)
        # Errors of many kinds, all recorded by the Device runner.
        assert d1("goal", "list", "--json", MO_PASSPHRASE="wrong " + PASSPHRASE).code == 6
        typo = recovery_key[:-1] + ("1" if recovery_key[-1] == "0" else "0")
        assert d1("recover", "--json", MO_RECOVERY_KEY=typo).code == 6
        assert d1("remote", "login", server.url, "--email", EMAIL, "--json",
                  MO_ACCOUNT_PASSWORD="wrong " + ACCOUNT_PASSWORD).code == 6
        assert d1("goal", "add", CANARY * 40, "--slice", "work", "--priority", "must",
                  "--month", "2027-01", "--json").code == 3
        assert d1("wipe", "--yes").code in (0, 5)
        d2.ok("goal", "add", "pending on d2", "--slice", "work", "--priority", "must",
              "--month", "2027-01")
        assert d2("wipe", "--yes", "--json").code == 5
        d1("doctor")
        d1("doctor", "--json")
        report = d2.ok("doctor")
        assert isinstance(report, dict)
        checks = {c["name"]: c for c in report["checks"]}
        assert {"version", "store", "schema", "integrity", "events", "kdf", "vault", "lock",
                "cache", "sync", "remote"} <= set(checks)
        assert checks["remote"]["ok"] is True and server.url in checks["sync"]["detail"]
        assert "pending 2" in checks["sync"]["detail"]  # the new goal: key record + event
        d1("status")
        # What must be clean: diagnostics, every stderr (errors and DEBUG logs) and the
        # server's DEBUG log. Normal stdout shows the user's own data on purpose.
        runs = d1.runs + d2.runs
        diagnostics = [r.stdout for r in runs if r.args[0] in ("doctor", "status")]
        outputs = "\n".join([*diagnostics, *(r.stderr for r in runs), server.log()]).encode()
        assert any(r.code != 0 and r.stderr for r in runs)
        assert b"DEBUG" in outputs or b"debug" in outputs.lower()
        secrets = [PASSPHRASE, recovery_key, recovery_key.replace("-", ""), ACCOUNT_PASSWORD,
                   CANARY]
        for secret in secrets:
            assert secret.encode() not in outputs, "a secret or domain text leaked"
        for key in _key_material(d2.home, PASSPHRASE):
            for form in _forms(key):
                assert form not in outputs, "key bytes leaked"
    finally:
        server.stop()
