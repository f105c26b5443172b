"""The projector: keeps the read model in step with the log, in effective order.

INV-002: the read model follows effective order and its cursor (G, C) is stored
in that order, with the encrypted cache. INV-011: when remote events now sort
before events already applied (the store reports that the cursor's applied set
is no longer a prefix), the read model is rebuilt from the log.

Opening uses the cache when it is present, authentic and still a prefix of the
effective order, then applies only the events after its cursor; otherwise it
rebuilds. Rebuilds stream the log (bounded memory) and never re-sort anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cbor2

from mo_local.app.queries import GoalView, ProjectView
from mo_local.crypto.vault import UnlockedVault
from mo_local.derived import cache, parallel
from mo_local.derived.readmodel import ReadModel
from mo_local.derived.search import SearchIndex
from mo_local.derived.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from mo_local.eventlog import EncryptedLog, OpenedEvent
from mo_local.store.eventstore import EventStore
from mo_local.store.records import Cursor

# Save the cache every this many applied events, so a crash mid-rebuild (or a
# long session) resumes from a recent cursor instead of from scratch.
DEFAULT_SAVE_EVERY = 50_000
# Layout of what `forked_state` hands from a forked child to the parent.
_FORKED_FORMAT = 1

log = logging.getLogger(__name__)


class Projector:
    """Read model + cursor + search index of one store, persisted as an encrypted cache."""

    def __init__(
        self,
        store: EventStore,
        log: EncryptedLog,
        vault: UnlockedVault,
        scope: str,
        *,
        save_every: int = DEFAULT_SAVE_EVERY,
        parallel_from: int | None = parallel.MIN_EVENTS,
    ) -> None:
        self._store = store
        self._log = log
        self._vault = vault
        self._scope = scope
        self._save_every = max(1, save_every)
        # Rebuild on two cores from this many rows on (None: always on one core);
        # public so that benchmarks and diagnostics can compare both ways.
        self.parallel_from = parallel_from
        self._model = ReadModel()
        self._cursor = Cursor()
        self._search = SearchIndex(self._model)
        self._unsaved = 0
        self.rebuilds = 0  # how often the model was rebuilt from the log (diagnostics, tests)

    @property
    def model(self) -> ReadModel:
        """The current read model (replaced by `rebuild`; do not keep it across calls)."""
        return self._model

    @property
    def cursor(self) -> Cursor:
        """Effective-order cursor of what the read model has applied."""
        return self._cursor

    @property
    def search_index(self) -> SearchIndex:
        """The search index of the current read model."""
        return self._search

    def search(
        self, text: str, goals: bool = True, projects: bool = True
    ) -> tuple[list[GoalView], list[ProjectView]]:
        """Ranked full-text search over the current read model (archived excluded)."""
        return self._search.search(text, goals, projects)

    # -- lifecycle --------------------------------------------------------------------

    def open(self) -> int:
        """Load the cache if trustworthy, else rebuild; then catch up. Returns events applied."""
        loaded = cache.load(self._store, self._vault, self._scope)
        if loaded is None:
            return self.rebuild()
        model, cursor = loaded
        if not self._store.cursor_is_prefix(cursor):
            log.info("derived cache predates a reordering of the log; rebuilding")
            return self.rebuild()
        self._install(model, cursor)
        return self.catch_up()

    def catch_up(self) -> int:
        """Apply the events after the cursor (rebuild first if the order changed, INV-011)."""
        if not self._store.cursor_is_prefix(self._cursor):
            log.info("remote events now precede applied ones; rebuilding derived state")
            return self.rebuild()
        return self._replay()

    def covers_all(self) -> bool:
        """True iff the read model has applied every event in the store.

        Every event is in the cursor's applied set, which `catch_up` keeps applied
        in effective order. Two indexed range probes that normally find nothing.
        """
        return self._store.covers_events(self._cursor)

    def follow(self, events: Sequence[OpenedEvent]) -> bool:
        """Fold events just committed to the log that come right after the cursor.

        For writers that hold the plaintext already (commands, sync pulls) and know
        what they wrote: the caller checked `covers_all()` before writing and
        `events` are everything it wrote since, in effective order — so they need
        no read and no second decryption. Returns False, applying nothing, if an
        event visibly does not follow (a synced event at or below the synced
        cursor, a pending one at or below the committed cursor); the caller then
        runs `catch_up`, which rebuilds if the order changed (INV-011).
        """
        synced, committed = self._cursor.synced, self._cursor.committed
        for opened in events:
            stored = opened.stored
            global_seq = stored.global_seq
            if global_seq is None:
                if stored.commit_seq <= committed:
                    return False
                committed = stored.commit_seq
            else:
                if global_seq <= synced:
                    return False
                synced = global_seq
        apply = self._model.apply
        for opened in events:
            apply(opened)
        self._cursor = Cursor(synced, committed)
        self._unsaved += len(events)
        if self._unsaved >= self._save_every:
            self.save()
        return True

    # -- folding in a forked helper process (large sync pulls) ---------------------------

    def fold_in_fork(self, events: Sequence[OpenedEvent]) -> None:
        """In a forked child only: fold synced events as `follow` would, never saving.

        The child works on its copy of this projector (fork copies the model), and
        must not touch the store: so no cache save here, whatever the count.
        """
        synced = self._cursor.synced
        apply = self._model.apply
        for opened in events:
            global_seq = opened.stored.global_seq
            if global_seq is None or global_seq <= synced:
                raise ValueError("only synced events after the cursor are folded in a fork")
            apply(opened)
            synced = global_seq
        self._cursor = Cursor(synced, self._cursor.committed)

    def forked_state(self) -> bytes:
        """In the forked child: its read model and cursor, for `adopt_forked` in the parent."""
        cursor = self._cursor
        return cbor2.dumps(
            [_FORKED_FORMAT, encode_snapshot(self._model), cursor.synced, cursor.committed]
        )

    def adopt_forked(self, state: bytes, cursor: Cursor) -> bool:
        """Install the state a forked child folded, if it is well formed and ends at `cursor`.

        Its model extends this one's (the child started from a copy of it), so the
        events it covers count as unsaved. False, changing nothing, otherwise.
        """
        try:
            body = cbor2.loads(state)
            format_version, snapshot, synced, committed = body
            if format_version != _FORKED_FORMAT or Cursor(synced, committed) != cursor:
                return False
            model = decode_snapshot(snapshot)
        except (ValueError, TypeError, SnapshotError, cbor2.CBORDecodeError):
            return False
        added = model.applied - self._model.applied
        if added < 0:
            return False
        self._install(model, cursor)
        self._unsaved = added
        if self._unsaved >= self._save_every:
            self.save()
        return True

    def rebuild(self) -> int:
        """Drop the read model and replay the whole log in effective order; saves the cache."""
        self.rebuilds += 1
        self._install(ReadModel(), Cursor())
        applied = self._parallel_rebuild()
        if applied is None:
            applied = self._replay()
        if self._unsaved or not applied:
            self.save()  # unless the replay's last periodic save already holds this state
        return applied

    def save(self) -> None:
        """Persist the read model and its cursor as an encrypted cache."""
        cache.save(self._store, self._vault, self._scope, self._model, self._cursor)
        self._unsaved = 0

    def close(self) -> None:
        """Save what was applied since the last save and drop the search index."""
        if self._unsaved:
            self.save()
        self._search.close()

    # -- internals --------------------------------------------------------------------

    def _install(self, model: ReadModel, cursor: Cursor) -> None:
        self._search.close()
        self._model = model
        self._cursor = cursor
        self._search = SearchIndex(model)
        self._unsaved = 0

    def _parallel_rebuild(self) -> int | None:
        """Fold the log on two cores (derived/parallel.py); None to replay on one."""
        if self.parallel_from is None or not parallel.available():
            return None
        total = self._store.count_events()
        if not self.parallel_from <= total <= parallel.MAX_EVENTS:
            return None
        folded = parallel.rebuild_in_two(self._store, self._log, total=total)
        if folded is None:
            log.info("parallel rebuild did not complete; replaying on one core")
            return None
        self._install(folded.model, folded.cursor)
        self._unsaved = folded.applied
        return folded.applied

    def _replay(self) -> int:
        apply = self._model.apply
        # The cursor's two sequences as plain ints: a Cursor per event (what
        # EventStore.advance returns) would be a sizeable share of a replay.
        synced, committed = self._cursor.synced, self._cursor.committed
        applied = 0
        try:
            for opened in self._log.read_effective(after=self._cursor):
                apply(opened)
                stored = opened.stored
                global_seq = stored.global_seq
                if global_seq is None:
                    if stored.commit_seq > committed:
                        committed = stored.commit_seq
                elif global_seq > synced:
                    synced = global_seq
                applied += 1
                self._unsaved += 1
                if self._unsaved >= self._save_every:
                    # Pages are fetched whole, so writing here does not disturb the read.
                    self._cursor = Cursor(synced, committed)
                    self.save()
        finally:
            # Also when an event fails to open: the cursor covers what was applied.
            self._cursor = Cursor(synced, committed)
        return applied
