"""Benchmark: sealing + appending records, reading + opening them, unlocking.

Each figure is printed beside a baseline measured in the same run:
- seal+append vs raw sqlite3 inserts of same-size blobs (same pragmas) with raw AES-GCM;
- read+open vs raw AES-GCM decryption of same-size ciphertexts plus a CBOR decode, and
  (second line) vs the same with the blobs read from a raw sqlite3 table;
- unlock vs one raw Argon2id derivation at the same parameters.
Throughputs are the best of `--repeat` runs (default 3) and times the shortest, ours
and baselines alike (after one warm-up unlock): the machine is shared.
Run: `.venv/bin/python bench/crypto_store.py [--events N] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mo_local.crypto.kdf import DEFAULT_KDF, derive_kek
from mo_local.crypto.vault import create_vault, unlock_with_passphrase
from mo_local.eventlog import EncryptedLog, Envelope
from mo_local.store.eventstore import EventStore

DATA = {"summary": "Run a half marathon in spring " * 3, "slice": "Health", "priority": "must"}


def envelope(i: int) -> Envelope:
    return Envelope("GoalRefined", 1, {**DATA, "n": i}, "2026-11-29T12:00:00Z", "bench", "dev")


def bench_seal_append(tmp: Path, n: int, batch: int, vault_kdf: object) -> float:
    new = create_vault(str(uuid.uuid4()), "bench passphrase", vault_kdf)  # type: ignore[arg-type]
    store = EventStore.open(tmp / f"seal-{batch}.db", create=True)
    log = EncryptedLog(store, new.vault, new.header.store_id, "dev")
    aggregate = str(uuid.uuid4())
    version = 0
    start = time.perf_counter()
    while version < n:
        envs = [envelope(version + k) for k in range(batch)]
        log.append("goal", aggregate, version, envs)
        version += batch
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def record_size(tmp: Path, vault_kdf: object) -> int:
    new = create_vault(str(uuid.uuid4()), "bench passphrase", vault_kdf)  # type: ignore[arg-type]
    store = EventStore.open(tmp / "size.db", create=True)
    log = EncryptedLog(store, new.vault, new.header.store_id, "dev")
    rows = log.append("goal", str(uuid.uuid4()), 0, [envelope(0)])
    store.close()
    return len(rows[0].record)


def baseline_raw_insert(tmp: Path, n: int, batch: int, size: int) -> float:
    conn = sqlite3.connect(tmp / f"raw-{batch}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, agg TEXT, v INTEGER, blob BLOB)"
    )
    aead = AESGCM(os.urandom(32))
    plain = os.urandom(size - 28)
    start = time.perf_counter()
    done = 0
    while done < n:
        conn.execute("BEGIN")
        for _ in range(batch):
            nonce = os.urandom(12)
            conn.execute(
                "INSERT INTO t (id, agg, v, blob) VALUES (?, ?, ?, ?)",
                (str(uuid.uuid4()), "a", done, nonce + aead.encrypt(nonce, plain, b"")),
            )
            done += 1
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def bench_read_open(
    tmp: Path, n: int, vault_kdf: object, repeat: int
) -> tuple[float, float, float]:
    """Ours, raw AES-GCM+CBOR in memory, and raw sqlite3 read + AES-GCM + CBOR (events/s)."""
    new = create_vault(str(uuid.uuid4()), "bench passphrase", vault_kdf)  # type: ignore[arg-type]
    path = tmp / "read.db"
    store = EventStore.open(path, create=True)
    log = EncryptedLog(store, new.vault, new.header.store_id, "dev")
    per_aggregate = 100
    for _ in range(n // per_aggregate):
        log.append("goal", str(uuid.uuid4()), 0, [envelope(k) for k in range(per_aggregate)])
    size = len(next(store.read_commit_order()).record)
    ours = 0.0
    count = 0
    for _ in range(repeat):
        # Fresh log object: nothing cached but what a real open would have.
        log = EncryptedLog(store, new.vault, new.header.store_id, "dev")
        start = time.perf_counter()
        count = sum(1 for _ in log.read_effective())
        ours = max(ours, count / (time.perf_counter() - start))
    store.close()

    aead = AESGCM(os.urandom(32))
    plain = cbor2.dumps({"type": "GoalRefined", "data": {**DATA, "n": 1}}, canonical=True)
    blobs = []
    for _ in range(count):
        nonce = os.urandom(12)
        blobs.append(nonce + aead.encrypt(nonce, plain, b"aad"))
    in_memory = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        for blob in blobs:
            cbor2.loads(aead.decrypt(blob[:12], blob[12:], b"aad"))
        in_memory = max(in_memory, count / (time.perf_counter() - start))

    conn = sqlite3.connect(tmp / "raw-read.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, blob BLOB)")
    filler = bytes(max(0, size - 28 - len(plain)))
    conn.execute("BEGIN")
    for _ in range(count):
        nonce = os.urandom(12)
        conn.execute(
            "INSERT INTO t (id, blob) VALUES (?, ?)",
            (str(uuid.uuid4()), nonce + aead.encrypt(nonce, plain + filler, b"aad")),
        )
    conn.execute("COMMIT")
    from_sqlite = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        for (blob,) in conn.execute("SELECT blob FROM t ORDER BY seq"):
            cbor2.loads(aead.decrypt(blob[:12], blob[12:], b"aad")[: len(plain)])
        from_sqlite = max(from_sqlite, count / (time.perf_counter() - start))
    conn.close()
    return ours, in_memory, from_sqlite


def bench_unlock(repeat: int) -> tuple[float, float]:
    new = create_vault(str(uuid.uuid4()), "bench passphrase", DEFAULT_KDF)
    # One warm-up each: the first 64 MiB Argon2 allocation of a process pays page faults.
    unlock_with_passphrase(new.header, "bench passphrase").lock()
    derive_kek("bench passphrase", new.header.salt, DEFAULT_KDF)
    ours = raw = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        unlock_with_passphrase(new.header, "bench passphrase").lock()
        ours = min(ours, time.perf_counter() - start)
        start = time.perf_counter()
        derive_kek("bench passphrase", new.header.salt, DEFAULT_KDF)
        raw = min(raw, time.perf_counter() - start)
    return ours, raw


def bench_command(tmp: Path) -> tuple[float, float]:
    """Best wall time of whole `mo` processes: `status` (no unlock) and `goal list` (unlock)."""
    home = tmp / "home"
    env = {**os.environ, "MO_HOME": str(home), "MO_NEW_PASSPHRASE": "p", "MO_PASSPHRASE": "p"}
    mo = str(Path(sys.executable).with_name("mo"))
    subprocess.run([mo, "init", "--json"], env=env, check=True, capture_output=True)
    for i in range(20):
        subprocess.run([mo, "goal", "add", f"Goal {i}", "--slice", "work", "--priority", "must",
                        "--month", "2027-05", "--json"], env=env, check=True, capture_output=True)

    def best(args: list[str]) -> float:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            subprocess.run([mo, *args], env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(["status", "--json"]), best(["goal", "list", "--json"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = max(1, args.repeat)
    from mo_local.crypto.kdf import MINIMUM_KDF

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        size = record_size(tmp, MINIMUM_KDF)
        n1 = min(args.events, 3_000)
        runs = iter(range(4 * repeat))

        def fresh() -> Path:
            directory = tmp / f"run-{next(runs)}"
            directory.mkdir()
            return directory

        ours1 = max(bench_seal_append(fresh(), n1, 1, MINIMUM_KDF) for _ in range(repeat))
        base1 = max(baseline_raw_insert(fresh(), n1, 1, size) for _ in range(repeat))
        ours100 = max(
            bench_seal_append(fresh(), args.events, 100, MINIMUM_KDF) for _ in range(repeat)
        )
        base100 = max(baseline_raw_insert(fresh(), args.events, 100, size) for _ in range(repeat))
        read, read_base, read_sqlite = bench_read_open(tmp, args.events * 5, MINIMUM_KDF, repeat)
        unlock, raw_kdf = bench_unlock(repeat)
        command = bench_command(tmp)
    print(f"record size: {size} bytes (padded)")
    print(
        f"seal+append, batch 1  : {ours1:10,.0f} events/s   baseline raw sqlite+AES-GCM "
        f"{base1:10,.0f}/s   ratio {ours1 / base1:.2f}"
    )
    print(
        f"seal+append, batch 100: {ours100:10,.0f} events/s   baseline raw sqlite+AES-GCM "
        f"{base100:10,.0f}/s   ratio {ours100 / base100:.2f}"
    )
    print(
        f"read+open             : {read:10,.0f} events/s   baseline raw AES-GCM+CBOR "
        f"{read_base:10,.0f}/s   ratio {read / read_base:.2f}"
    )
    print(
        f"read+open             : {read:10,.0f} events/s   baseline sqlite read+AES-GCM+CBOR "
        f"{read_sqlite:10,.0f}/s   ratio {read / read_sqlite:.2f}"
    )
    print(
        f"unlock (m=64MiB,t=3)  : {unlock * 1000:10.1f} ms         baseline raw Argon2id "
        f"{raw_kdf * 1000:8.1f} ms     ratio {unlock / raw_kdf:.2f}"
    )
    print(f"whole `mo status` process (start-up, open, no unlock): {command[0] * 1000:.0f} ms; "
          f"whole `mo goal list` (start-up, unlock at m=64MiB t=3, open, list): "
          f"{command[1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
