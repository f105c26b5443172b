"""MO Local: a local-first, end-to-end-encrypted goals and projects app."""

__version__ = "0.1.0"
