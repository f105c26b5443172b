"""Shared fixtures of the crypto tests: cheap KDF parameters and a ready vault."""

from __future__ import annotations

import pytest

from mo_local.crypto.kdf import KdfParams
from mo_local.crypto.vault import NewVault, create_vault

# The creation floor: fast enough for tests, never used by the product.
FAST_KDF = KdfParams(memory_kib=8192, iterations=1, parallelism=1)
PASSPHRASE = "correct horse battery staple"
STORE_ID = "5b0c3f1e-8d7a-4c55-9f1e-2a6b7c8d9e01"


@pytest.fixture
def new_vault() -> NewVault:
    """A freshly created vault (fast KDF) for STORE_ID with PASSPHRASE."""
    return create_vault(STORE_ID, PASSPHRASE, FAST_KDF)
