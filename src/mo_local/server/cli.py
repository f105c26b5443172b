"""`mo-server run` and `mo-server migrate`.

The database comes from `--database`, else env `MO_DATABASE_URL`, else a SQLite file
in the platform's user data directory (no set-up needed).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from platformdirs import user_data_dir
from sqlalchemy.exc import SQLAlchemyError

from mo_local.server.allocator import freeze_startup_heap, release_large_buffers
from mo_local.server.app import create_app
from mo_local.server.settings import ServerSettings, backend_name

_ENV_DATABASE = "MO_DATABASE_URL"
_ENV_AUTH_MODE = "MO_SERVER_AUTH_MODE"
_ENV_KRATOS_URL = "MO_KRATOS_URL"
_log = logging.getLogger("mo_local.server")


def default_database_url() -> str:
    """`sqlite:///<user data dir>/server.db`."""
    return f"sqlite:///{Path(user_data_dir('mo-server')) / 'server.db'}"


def settings_from_environment() -> ServerSettings:
    """Settings from the environment (what each worker process reads)."""
    auth_mode = os.environ.get(_ENV_AUTH_MODE, "builtin")
    if auth_mode not in ("builtin", "kratos"):
        raise SystemExit(f"error: {_ENV_AUTH_MODE} must be builtin or kratos")
    return ServerSettings(
        database_url=os.environ.get(_ENV_DATABASE) or default_database_url(),
        auth_mode="kratos" if auth_mode == "kratos" else "builtin",
        kratos_url=os.environ.get(_ENV_KRATOS_URL) or None,
    )


def app_from_environment() -> FastAPI:
    """uvicorn factory for `--workers N`: every worker process builds its own app."""
    configure_logging(os.environ.get("MO_SERVER_LOG_LEVEL", "info"))
    release_large_buffers()
    app = create_app(settings_from_environment())
    freeze_startup_heap()
    return app


def configure_logging(level: str) -> None:
    """One line per record on stderr, unless the host already configured logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level.upper(),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
            stream=sys.stderr,
        )
    # Alembic's per-migration chatter is not operator news.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mo-server", description="MO Local sync server")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="migrate the database, then serve")
    run.add_argument("--database", help=f"database URL (env {_ENV_DATABASE})")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8765)
    run.add_argument("--workers", type=int, default=1)
    run.add_argument("--auth", choices=["builtin", "kratos"], default=None)
    run.add_argument("--kratos-url", default=None)
    run.add_argument("--log-level", default="info")
    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--database", help=f"database URL (env {_ENV_DATABASE})")
    migrate.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mo-server` console script."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    database_url = args.database or os.environ.get(_ENV_DATABASE) or default_database_url()
    try:
        backend = backend_name(database_url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        return _migrate(database_url, backend)
    # The serving process never loads Alembic (~7 MiB resident): a child migrates.
    migrated = migrate_in_child(database_url, args.log_level)
    if migrated != 0:
        return migrated
    # Workers read their settings from the environment; so does the single-process path.
    os.environ[_ENV_DATABASE] = database_url
    os.environ["MO_SERVER_LOG_LEVEL"] = args.log_level
    if args.auth:
        os.environ[_ENV_AUTH_MODE] = args.auth
    if args.kratos_url:
        os.environ[_ENV_KRATOS_URL] = args.kratos_url
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = settings_from_environment()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and backend == "sqlite":
        _log.warning(
            "several workers on SQLite: long-polls wake within a worker only; "
            "other pushes are seen at the next periodic re-check"
        )
    if args.workers > 1:
        uvicorn.run(
            "mo_local.server.cli:app_from_environment",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
        )
    else:
        release_large_buffers()
        app = create_app(settings)
        freeze_startup_heap()
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
        )
    return 0


def migrate_in_child(database_url: str, log_level: str) -> int:
    """`mo-server migrate` in a child process; its exit status (0 when the schema is ready).

    The URL travels in the environment, not on a command line others can read.
    """
    return subprocess.call(
        [sys.executable, "-m", "mo_local.server.cli", "migrate", "--log-level", log_level],
        env={**os.environ, _ENV_DATABASE: database_url},
    )


def _migrate(database_url: str, backend: str) -> int:
    from mo_local.server.migrate import upgrade  # Alembic: only in migrating processes

    try:
        revision = upgrade(database_url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        # The type only: driver messages may quote the URL with its password.
        print(f"error: database unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
    _log.info("schema ready backend=%s revision=%s", backend, revision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
