"""The zero-knowledge sync server. Imports nothing client-side (INV-006)."""
