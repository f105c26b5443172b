"""How SQLite errors reach callers: damage becomes StoreCorrupt (its message names `mo doctor`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mo_local.store.connection import translate
from mo_local.store.errors import StoreCorrupt, StoreError


def test_a_value_too_big_can_only_be_damage(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("CREATE TABLE t (b BLOB)")
    conn.execute("INSERT INTO t VALUES (zeroblob(200))")
    # A damaged cell claims a size over the length limit; a low limit shows the same error.
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100)
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute("SELECT b FROM t").fetchall()
    conn.close()
    assert caught.value.sqlite_errorcode & 0xFF == 18  # SQLITE_TOOBIG
    translated = translate(caught.value, tmp_path / "t.db")
    assert isinstance(translated, StoreCorrupt)


def test_other_errors_stay_plain_store_errors(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db")
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute("SELECT * FROM missing_table")
    conn.close()
    translated = translate(caught.value, tmp_path / "t.db")
    assert type(translated) is StoreError and "missing_table" not in str(translated)
