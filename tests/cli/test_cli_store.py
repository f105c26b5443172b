"""`mo init`, `status`, `passphrase change`, `recover`, `doctor` through the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cli_runner import PASSPHRASE, Mo


def test_init_then_status_without_passphrase(mo: Mo) -> None:
    created = mo.init()
    assert set(created) == {"store_id", "device_id", "recovery_key"}
    status = mo.ok("status", MO_PASSPHRASE="")
    assert isinstance(status, dict)
    assert status["store_id"] == created["store_id"]
    assert status["events"] == 0 and status["pending"] == 0
    assert set(status) == {"store_id", "device_id", "events", "pending", "remote", "head",
                           "cursor"}


def test_init_twice_is_a_conflict(mo: Mo) -> None:
    mo.init()
    again = mo("init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1", "--json")
    assert again.code == 5
    assert "already holds a store" in str(again.error["message"])


def test_kdf_floor_is_enforced_at_init(mo: Mo) -> None:
    weak = mo("init", "--kdf-memory-kib", "8191", "--kdf-iterations", "1", "--json")
    assert weak.code == 3
    assert not (mo.home / "mo.db").exists()
    zero = mo("init", "--kdf-memory-kib", "8192", "--kdf-iterations", "0", "--json")
    assert zero.code == 3


def test_wrong_passphrase_is_exit_6_and_changes_nothing(mo: Mo) -> None:
    mo.init()
    goal = mo.ok("goal", "add", "Learn to sail", "--slice", "leisure", "--priority", "maybe",
                 "--month", "2027-06")
    before = (mo.home / "mo.db").read_bytes()
    wrong = mo("goal", "list", "--json", MO_PASSPHRASE="not the passphrase")
    assert wrong.code == 6
    assert wrong.error["code"] == "unlock_failed"
    assert "not the passphrase" not in wrong.stderr
    assert (mo.home / "mo.db").read_bytes() == before
    assert isinstance(goal, dict)


def test_passphrase_change_keeps_data_and_retires_the_old_one(mo: Mo) -> None:
    mo.init()
    goal = mo.ok("goal", "add", "Call grandma weekly", "--slice", "family", "--priority",
                 "must", "--month", "2027-01")
    assert isinstance(goal, dict)
    assert mo.ok("passphrase", "change", MO_NEW_PASSPHRASE="the new one 42") == {"ok": True}
    assert mo("goal", "list", "--json").code == 6
    listed = mo.ok("goal", "list", MO_PASSPHRASE="the new one 42")
    assert isinstance(listed, list)
    assert [g["id"] for g in listed] == [goal["id"]]


def test_recover_with_the_recovery_key_sets_a_new_passphrase(mo: Mo) -> None:
    created = mo.init()
    goal = mo.ok("goal", "add", "Save for a bike", "--slice", "money", "--priority", "should",
                 "--month", "2027-09")
    assert isinstance(goal, dict)
    wrong = mo("recover", "--json", MO_RECOVERY_KEY="0" * 56, MO_NEW_PASSPHRASE="x")
    assert wrong.code == 6
    rotated = mo.ok("recover", "--rotate-recovery-key",
                    MO_RECOVERY_KEY=str(created["recovery_key"]),
                    MO_NEW_PASSPHRASE="after recovery")
    assert isinstance(rotated, dict) and rotated["ok"] is True
    assert rotated["recovery_key"] != created["recovery_key"]
    assert mo("goal", "list", "--json").code == 6
    listed = mo.ok("goal", "list", MO_PASSPHRASE="after recovery")
    assert isinstance(listed, list) and listed[0]["id"] == goal["id"]
    stale = mo("recover", "--json", MO_RECOVERY_KEY=str(created["recovery_key"]),
               MO_NEW_PASSPHRASE="y")
    assert stale.code == 6


def test_secrets_are_never_flags_and_no_terminal_means_no_prompt(mo: Mo) -> None:
    mo.init()
    # Without MO_PASSPHRASE and without a terminal, `mo` refuses rather than hang.
    done = subprocess.run(
        [sys.executable, "-m", "mo_local.cli.main", "goal", "list", "--json"],
        env={k: v for k, v in os.environ.items() if not k.startswith("MO_")}
        | {"MO_HOME": str(mo.home)},
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 2
    assert "no terminal" in done.stderr
    assert "--passphrase" not in mo("goal", "add", "--help").stdout


def test_passphrase_file_is_read(mo: Mo, tmp_path: Path) -> None:
    mo.init()
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    done = mo("goal", "list", "--json", "--passphrase-file", str(secret), MO_PASSPHRASE="wrong")
    assert done.code == 0, done.stderr


def test_inv007_second_process_gets_exit_7_and_the_holder_is_unaffected(mo: Mo) -> None:
    """INV-007: a real second `mo` process is refused with exit 7 while a store is held."""
    mo.init()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from mo_local.client import Client
            client = Client.open(Path({str(mo.home)!r}))
            client.unlock({PASSPHRASE!r})
            print("held", flush=True)
            sys.stdin.readline()
            from mo_local.app.queries import ListGoals
            print(len(client.list_goals(ListGoals())), flush=True)
            client.close()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        busy = mo("goal", "list", "--json")
        assert busy.code == 7
        assert busy.error["code"] == "store_busy"
        assert f"pid {holder.pid}" in str(busy.error["message"])
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "0"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
    assert mo("goal", "list", "--json").code == 0


def test_corrupt_database_is_a_clear_error_not_a_traceback(mo: Mo) -> None:
    mo.init()
    for i in range(30):
        mo.ok("goal", "add", f"Goal number {i}", "--slice", "work", "--priority", "must",
              "--month", "2027-02")
    db = mo.home / "mo.db"
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.truncate(size // 3)
    broken = mo("goal", "list", "--json")
    assert broken.code == 1
    assert "Traceback" not in broken.stderr
    message = str(broken.error["message"])
    assert str(db) in message and "mo doctor" in message
    doctor = mo("doctor", "--json")
    assert "Traceback" not in doctor.stderr
    report = doctor.json
    assert isinstance(report, dict) and report["ok"] is False
    assert any(not c["ok"] and str(db) in c["detail"] for c in report["checks"])


def test_not_sqlite_is_a_clear_error(mo: Mo) -> None:
    mo.home.mkdir(parents=True)
    (mo.home / "mo.db").write_bytes(b"this is not a database at all" * 100)
    broken = mo("status", "--json")
    assert broken.code == 1 and "Traceback" not in broken.stderr
    assert "mo doctor" in str(broken.error["message"])


def test_doctor_reports_without_secrets(mo: Mo) -> None:
    created = mo.init()
    mo.ok("goal", "add", "Canary-d0c70r summary", "--slice", "work", "--priority", "must",
          "--month", "2027-02")
    started = time.monotonic()
    doctor = mo("doctor", "--json")
    assert time.monotonic() - started < 60
    text = doctor.stdout + doctor.stderr
    report = doctor.json
    assert isinstance(report, dict)
    names = {c["name"] for c in report["checks"]}
    assert {"version", "store", "schema", "integrity", "events", "kdf", "vault"} <= names
    for secret in (PASSPHRASE, str(created["recovery_key"]), "Canary-d0c70r"):
        assert secret not in text
