"""The zero-knowledge sync server. Imports nothing client-side (INV-006)."""

from mo_local.server.app import create_app
from mo_local.server.settings import (
    Limits,
    LoginThrottleSettings,
    PasswordHashing,
    ServerSettings,
)

__all__ = ["Limits", "LoginThrottleSettings", "PasswordHashing", "ServerSettings", "create_app"]
