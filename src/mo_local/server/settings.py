"""Server configuration: one frozen value built by the caller and handed to the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.engine import make_url

if TYPE_CHECKING:  # httpx is loaded only by servers that talk to Kratos
    import httpx

AuthMode = Literal["builtin", "kratos"]


@dataclass(frozen=True)
class Limits:
    """Request size limits; exceeding one is a 4xx problem with a stable code."""

    max_records_per_push: int = 1000
    max_record_bytes: int = 64 * 1024
    max_body_bytes: int = 8 * 1024 * 1024
    max_page_size: int = 1000
    max_vault_bytes: int = 64 * 1024


@dataclass(frozen=True)
class LoginThrottleSettings:
    """Lockout policy for login attempts per (email, client address).

    The attempt state lives in the server database, shared by every server process.
    `max_tracked_keys` bounded the former in-memory table and is no longer used: the
    table is bounded by `forget_after_seconds` instead (expired rows are deleted), and
    live rows are never evicted early.
    """

    max_attempts: int = 5
    base_lockout_seconds: float = 1.0
    max_lockout_seconds: float = 15 * 60.0
    forget_after_seconds: float = 15 * 60.0
    max_tracked_keys: int = 100_000


@dataclass(frozen=True)
class PasswordHashing:
    """Argon2id costs for account passwords (argon2-cffi's RFC 9106 low-memory profile)."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4


@dataclass(frozen=True)
class ServerSettings:
    """Everything the app factory needs; no module-level configuration exists."""

    database_url: str
    limits: Limits = field(default_factory=Limits)
    token_ttl: timedelta = timedelta(days=30)
    login_throttle: LoginThrottleSettings = field(default_factory=LoginThrottleSettings)
    password_hashing: PasswordHashing = field(default_factory=PasswordHashing)
    auth_mode: AuthMode = "builtin"
    kratos_url: str | None = None
    # Tests inject a transport that reaches a fake Kratos; production leaves it None.
    kratos_transport: httpx.AsyncBaseTransport | None = field(
        default=None, repr=False, compare=False
    )
    kratos_timeout_seconds: float = 5.0
    max_wait_seconds: float = 30.0
    # A long-poll re-reads the database at least this often, so a lost notification
    # (listener reconnecting, several SQLite processes) only delays a wake-up.
    long_poll_recheck_seconds: float = 5.0
    notify_channel: str = "mo_local_push"
    sqlite_busy_timeout_ms: int = 10_000
    # PostgreSQL: at most this many statements of the hot paths (push, pull) at once per
    # server process; more requests queue in the process. Each holds its connection for
    # about a millisecond, so a few keep a process busy; more only add PostgreSQL
    # backends competing for the CPU and for the WAL flush. Measured with 16 concurrent
    # clients on two busy cores: p99 push latency 26-56 ms (median 43) with 4, 48-88 ms
    # (median 61) with 20, the earlier size; p50 15 ms against 11 ms.
    postgres_connections: int = 4

    def __post_init__(self) -> None:
        if self.auth_mode not in ("builtin", "kratos"):
            raise ValueError("auth_mode must be 'builtin' or 'kratos'")
        if self.auth_mode == "kratos" and not self.kratos_url:
            raise ValueError("auth_mode 'kratos' needs kratos_url")
        if not self.notify_channel.isidentifier():
            raise ValueError("notify_channel must be a plain identifier")
        if self.max_wait_seconds < 0 or self.long_poll_recheck_seconds <= 0:
            raise ValueError("wait settings must be positive")
        if self.postgres_connections < 1:
            raise ValueError("postgres_connections must be at least 1")


def sqlalchemy_url(database_url: str) -> str:
    """Normalise a database URL for SQLAlchemy: plain PostgreSQL URLs use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    url = make_url(database_url)
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError("database URL must be sqlite:///… or postgresql://…")
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
        raise ValueError("PostgreSQL is supported through psycopg 3 only")
    return database_url


def libpq_url(database_url: str) -> str:
    """The libpq form of a PostgreSQL URL, for the dedicated LISTEN connection."""
    url = make_url(sqlalchemy_url(database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def backend_name(database_url: str) -> Literal["sqlite", "postgresql"]:
    """Which of the two supported backends a URL names."""
    name = make_url(sqlalchemy_url(database_url)).get_backend_name()
    return "sqlite" if name == "sqlite" else "postgresql"
