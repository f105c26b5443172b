"""Key derivation, AEAD, canonical encoding, the vault and record sealing."""
