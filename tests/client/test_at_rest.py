"""INV-014: nothing useful at rest — no key unencrypted, no domain text in any file."""

from __future__ import annotations

import base64
from pathlib import Path

from mo_local.app import commands as c
from mo_local.client import Client
from mo_local.crypto.kdf import MINIMUM_KDF

PASSPHRASE = "at-rest passphrase Q7#vX2"
CANARIES = {
    "summary": "CANARY-goal-summary-5f1d",
    "name": "CANARY-project-name-93ab",
    "description": "CANARY-description-7c22",
    "milestone": "CANARY-milestone-0e4f",
}


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        base64.b64encode(secret).rstrip(b"="),
    ]


def _all_bytes(home: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def test_inv014_no_key_or_domain_text_at_rest(tmp_path: Path) -> None:
    """INV-014: DB, WAL, SHM and lock files hold no canary, passphrase, recovery key or key."""
    home = tmp_path / "home"
    client, recovery_key = Client.create(home, PASSPHRASE, MINIMUM_KDF)
    try:
        base = client.command_base(None, None, client.new_id())
        goal = client.execute(c.CreateGoal(**base, summary=CANARIES["summary"], slice="health",
                                           priority="must", target_month="2027-05"))
        project = client.execute(c.CreateProject(
            **client.command_base(None, None, client.new_id()), name=CANARIES["name"],
            start_date="2027-01-01", target_date="2027-05-01",
            description=CANARIES["description"], goal_id=goal.aggregate_id))
        client.execute(c.AddMilestone(
            **client.command_base(None, None, project.aggregate_id),
            name=CANARIES["milestone"], target_date="2027-03-01"))
        found = client.search("CANARY")
        assert found[0] and found[1], "search must find the canaries in memory"
        k_vault = bytes(client.vault._key)
        deks = [bytes(d.key) for d in client.log._deks_by_id.values()]
        assert len(deks) == 2
        # Files while the store is open and unlocked (WAL not yet checkpointed) ...
        open_files = _all_bytes(home)
    finally:
        client.close()
    closed_files = _all_bytes(home)
    assert any(name.endswith("-wal") for name in open_files), "the scan must cover the WAL"
    secrets: dict[str, list[bytes]] = {
        **{f"canary {k}": [v.encode()] for k, v in CANARIES.items()},
        "passphrase": [PASSPHRASE.encode()],
        "recovery key": [recovery_key.encode(), recovery_key.replace("-", "").encode()],
        "K_vault": _forms(k_vault),
        **{f"DEK {i}": _forms(d) for i, d in enumerate(deks)},
    }
    for files in (open_files, closed_files):
        for path, data in files.items():
            for what, forms in secrets.items():
                for form in forms:
                    assert form not in data, f"{what} found in {path}"


def test_inv014_event_type_names_are_not_at_rest(tmp_path: Path) -> None:
    """INV-014/§6: event types and timestamps are not plaintext columns or bytes."""
    home = tmp_path / "home"
    client, _ = Client.create(home, PASSPHRASE, MINIMUM_KDF)
    try:
        client.execute(c.CreateGoal(**client.command_base(None, None, client.new_id()),
                                    summary="x", slice="work", priority="must",
                                    target_month="2027-05"))
        at = client.command_base(None, None, "x")["at"]
    finally:
        client.close()
    for path, data in _all_bytes(home).items():
        assert b"GoalCreated" not in data, path
        assert at[:13].encode() not in data, path  # e.g. "2026-11-29T13"
