"""The command handler: idempotency, load, version check, decide, append (DESIGN.md §4)."""

from __future__ import annotations

from mo_local.app.commands import Command, fingerprint
from mo_local.app.decisions import FieldCheck, decide
from mo_local.app.loading import Loader, load_goal, load_project
from mo_local.app.ports import CommandResult, EventLog, EventMeta
from mo_local.domain.errors import Conflict, ValidationError
from mo_local.domain.fold import AGGREGATE_TYPES
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project
from mo_local.domain.values import parse_id, parse_timestamp

_TOKEN_MAX = 200
_TOKEN_RULE = f"must be 1–{_TOKEN_MAX} characters"


def _is_token(raw: object) -> bool:
    return isinstance(raw, str) and 1 <= len(raw) <= _TOKEN_MAX


def _is_version(raw: object) -> bool:
    return raw is None or (isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0)


class CommandHandler:
    """Runs commands against an `EventLog`, one transaction per command."""

    def __init__(self, log: EventLog) -> None:
        self._log = log

    def handle(self, command: Command) -> CommandResult:
        """Run one command; raises only `DomainError` subclasses on purpose."""
        aggregate_type = getattr(type(command), "aggregate_type", None)
        if aggregate_type not in AGGREGATE_TYPES or not isinstance(command, Command):
            raise ValidationError.of("command", "unknown command")
        with self._log.transaction():
            key = command.idempotency_key
            if key is not None and not _is_token(key):
                raise ValidationError.of("idempotency_key", _TOKEN_RULE)
            # Only an idempotency key needs the fingerprint (it never raises).
            fp = fingerprint(command) if key is not None else ""
            if key is not None:
                replayed = self._replay(key, fp)
                if replayed is not None:
                    return replayed
            check = FieldCheck()
            aggregate_id = check.value(parse_id, command.aggregate_id, "id")
            at = check.value(parse_timestamp, command.at, "at")
            if not _is_token(command.actor):
                check.fail("actor", _TOKEN_RULE)
            if not _is_version(command.known_version):
                check.fail("known_version", "must be a version number ≥ 0")
            loader = Loader(self._log, aggregate_type, aggregate_id, command.known_version)
            decision = decide(command, at, check, loader)
            if not decision.events:
                return CommandResult(aggregate_id, loader.version, decision.created_id)
            result = CommandResult(
                aggregate_id, loader.version + len(decision.events), decision.created_id
            )
            meta = EventMeta(
                occurred_at=at,
                actor=command.actor,
                causation_id=command.causation_id,
                correlation_id=command.correlation_id,
            )
            version = self._log.append(
                aggregate_type,
                aggregate_id,
                loader.version,
                decision.events,
                meta,
                (key, fp, result) if key is not None else None,
            )
            if version != result.version:
                return CommandResult(aggregate_id, version, decision.created_id)
            return result

    def _replay(self, key: str, fp: str) -> CommandResult | None:
        found = self._log.find_idempotent(key)
        if found is None:
            return None
        recorded_fp, result = found
        if recorded_fp != fp:
            raise Conflict("idempotency key already used by a different command")
        return result

    def load_goal(self, goal_id: str) -> tuple[Goal | None, int]:
        """A goal's state (None if unknown) and version, folded like commands see it."""
        with self._log.transaction():
            return load_goal(self._log, goal_id)

    def load_project(self, project_id: str) -> tuple[Project | None, int]:
        """A project's state (None if unknown) and version, folded like commands see it."""
        with self._log.transaction():
            return load_project(self._log, project_id)
