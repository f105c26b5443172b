"""Escape hatches through the real `mo`: backups, restore, recover, wipe (issue 5)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import cbor2
from cli_runner import PASSPHRASE, Mo


def _populate(mo: Mo) -> dict[str, object]:
    goal = mo.ok("goal", "add", "Restore canary goal", "--slice", "health", "--priority",
                 "must", "--month", "2027-03")
    assert isinstance(goal, dict)
    project = mo.ok("project", "add", "Restore canary project", "--start", "2027-01-01",
                    "--target", "2027-03-01", "--goal", str(goal["id"]))
    assert isinstance(project, dict)
    mo.ok("milestone", "add", str(project["id"]), "Halfway", "--date", "2027-02-01")
    mo.ok("project", "status", str(project["id"]), "completed")
    mo.ok("goal", "add", "Second goal", "--slice", "work", "--priority", "maybe",
          "--month", "2027-09")
    return {"goal": goal["id"], "project": project["id"]}


def _views(mo: Mo, **env: str) -> tuple[object, object, object]:
    return (mo.ok("goal", "list", "--all", **env), mo.ok("project", "list", "--all", **env),
            mo.ok("conflicts", **env))


def test_inv012_keys_and_db_backup_restore_identical_read_models(mo: Mo, tmp_path: Path) -> None:
    """INV-012: a key backup + a DB backup restored into a fresh home give identical views."""
    mo.init()
    _populate(mo)
    keys, db = tmp_path / "keys.mokeys", tmp_path / "db.sqlite"
    assert mo.ok("backup", "keys", "--out", str(keys)) == {"path": str(keys.resolve())}
    assert mo.ok("backup", "db", "--out", str(db)) == {"path": str(db.resolve())}
    for f in (keys, db):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert b"Restore canary" not in keys.read_bytes() + db.read_bytes()
    fresh = Mo(tmp_path / "fresh")
    restored = fresh.ok("restore", "--keys", str(keys), "--db", str(db))
    assert isinstance(restored, dict)
    status = mo.ok("status")
    assert isinstance(status, dict)
    assert restored["store_id"] == status["store_id"]
    assert _views(fresh) == _views(mo)
    fresh_status = fresh.ok("status")
    assert isinstance(fresh_status, dict) and fresh_status["device_id"] != status["device_id"]


def test_restore_with_the_recovery_key(mo: Mo, tmp_path: Path) -> None:
    created = mo.init()
    _populate(mo)
    keys, db = tmp_path / "k", tmp_path / "d"
    mo.ok("backup", "keys", "--out", str(keys))
    mo.ok("backup", "db", "--out", str(db))
    fresh = Mo(tmp_path / "fresh")
    wrong = fresh("restore", "--keys", str(keys), "--db", str(db), "--recovery-key", "--json",
                  MO_RECOVERY_KEY="0" * 56)
    assert wrong.code == 6
    assert not (fresh.home / "mo.db").exists()
    fresh.ok("restore", "--keys", str(keys), "--db", str(db), "--recovery-key",
             MO_RECOVERY_KEY=str(created["recovery_key"]))
    assert _views(fresh) == _views(mo)


def test_restore_refuses_to_mix_stores_and_bad_files(mo: Mo, tmp_path: Path) -> None:
    mo.init()
    _populate(mo)
    other = Mo(tmp_path / "other")
    other.init()
    keys, other_db = tmp_path / "keys", tmp_path / "other.db"
    mo.ok("backup", "keys", "--out", str(keys))
    other.ok("backup", "db", "--out", str(other_db))
    fresh = Mo(tmp_path / "fresh")
    mixed = fresh("restore", "--keys", str(keys), "--db", str(other_db), "--json")
    assert mixed.code == 5 and mixed.error["code"] == "backup_mismatch"
    assert not (fresh.home / "mo.db").exists()
    # Truncated and tampered key backups, and a database that is not SQLite.
    data = keys.read_bytes()
    truncated, tampered, garbage = tmp_path / "t", tmp_path / "x", tmp_path / "g"
    truncated.write_bytes(data[: len(data) // 2])
    parsed = cbor2.loads(data)
    sealed = bytearray(parsed["keys"])
    sealed[len(sealed) // 2] ^= 0x01
    tampered.write_bytes(cbor2.dumps({**parsed, "keys": bytes(sealed)}, canonical=True))
    garbage.write_bytes(b"not sqlite at all" * 64)
    for bad in (truncated, tampered):
        done = fresh("restore", "--keys", str(bad), "--json")
        assert done.code == 3, done.stderr
        assert "Traceback" not in done.stderr and str(bad) in str(done.error["message"])
    done = fresh("restore", "--keys", str(keys), "--db", str(garbage), "--json")
    assert done.code == 3 and "Traceback" not in done.stderr
    wrong = fresh("restore", "--keys", str(keys), "--json", MO_PASSPHRASE="wrong")
    assert wrong.code == 6
    # A vault header altered inside the file cannot be told from a wrong secret: exit 6.
    vault = bytearray(parsed["vault"])
    vault[-5] ^= 0x01
    tampered.write_bytes(cbor2.dumps({**parsed, "vault": bytes(vault)}, canonical=True))
    altered = fresh("restore", "--keys", str(tampered), "--json")
    assert altered.code in (3, 6) and "Traceback" not in altered.stderr
    assert not (fresh.home / "mo.db").exists()


def test_keys_only_restore_unlocks_an_empty_device(mo: Mo, tmp_path: Path) -> None:
    mo.init()
    _populate(mo)
    keys = tmp_path / "keys"
    mo.ok("backup", "keys", "--out", str(keys))
    fresh = Mo(tmp_path / "fresh")
    restored = fresh.ok("restore", "--keys", str(keys))
    assert isinstance(restored, dict) and restored["events"] == 0
    assert fresh.ok("goal", "list") == []
    # The old passphrase is the one in the backup; a wrong one is refused on the new device.
    assert fresh("goal", "list", "--json", MO_PASSPHRASE="nope").code == 6


def test_backup_db_while_another_process_holds_the_store(mo: Mo, tmp_path: Path) -> None:
    mo.init()
    _populate(mo)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from mo_local.client import Client
            client = Client.open(Path({str(mo.home)!r}))
            print("held", flush=True)
            sys.stdin.readline()
            client.close()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        assert mo("goal", "list", "--json").code == 7
        copy = tmp_path / "copy.db"
        assert mo.ok("backup", "db", "--out", str(copy)) == {"path": str(copy.resolve())}
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
    keys = tmp_path / "keys"
    mo.ok("backup", "keys", "--out", str(keys))
    fresh = Mo(tmp_path / "fresh")
    fresh.ok("restore", "--keys", str(keys), "--db", str(copy))
    assert _views(fresh) == _views(mo)


def test_corrupted_database_then_restore_from_backups(mo: Mo, tmp_path: Path) -> None:
    mo.init()
    _populate(mo)
    keys, db = tmp_path / "keys", tmp_path / "db"
    mo.ok("backup", "keys", "--out", str(keys))
    mo.ok("backup", "db", "--out", str(db))
    before = _views(mo)
    path = mo.home / "mo.db"
    raw = bytearray(path.read_bytes())
    for offset in range(4096, len(raw), 4096):
        raw[offset + 8: offset + 4000] = os.urandom(3992)
    path.write_bytes(bytes(raw))
    broken = mo("goal", "list", "--json")
    assert broken.code == 1 and "Traceback" not in broken.stderr
    assert "mo doctor" in str(broken.error["message"])
    doctor = mo("doctor", "--json")
    report = doctor.json
    assert isinstance(report, dict) and report["ok"] is False
    assert doctor.code == 1
    fresh = Mo(tmp_path / "fresh")
    fresh.ok("restore", "--keys", str(keys), "--db", str(db))
    assert _views(fresh) == before


def test_wipe_refuses_while_events_are_pending(mo: Mo) -> None:
    mo.init()
    _populate(mo)
    no_yes = mo("wipe", "--json")
    assert no_yes.code == 2
    refused = mo("wipe", "--yes", "--json")
    assert refused.code == 5
    assert refused.error["code"] == "pending_events"
    assert (mo.home / "mo.db").exists()
    status = mo.ok("status")
    assert isinstance(status, dict)
    assert str(status["pending"]) in str(refused.error["message"])
    assert mo.ok("wipe", "--yes", "--force") == {"ok": True}
    assert not (mo.home / "mo.db").exists()
    assert mo("status", "--json").code == 4
    assert PASSPHRASE not in refused.stderr
