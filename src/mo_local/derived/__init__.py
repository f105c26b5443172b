"""Derived state: projections in effective order, encrypted caches, search."""
