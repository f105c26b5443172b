"""Full-text search over goal summaries and project names and descriptions.

The index is SQLite FTS5 in a private in-memory connection, built from the
decrypted read model: nothing searchable ever reaches a file (INV-014), and the
index vanishes with the process or on `close()`.

Two tables per aggregate type: one with the `unicode61` tokenizer (whole words,
prefixes, accents folded) and one with the `trigram` tokenizer (substrings).
Ranking, best first, bm25 within a tier (project names weigh more than
descriptions):
  0. every word of the query is a word of the text;
  1. every word of the query starts a word of the text;
  2. the whole query is a substring of the text;
  3. every word of the query (each ≥ 3 characters) is a substring of the text.
Queries shorter than 3 characters cannot use trigrams and are answered by a
Python scan instead (word-start matches first, then substrings).

User text only ever reaches FTS5 as quoted string literals bound as parameters,
so operators such as `NEAR`, `*`, `-`, `OR`, `^` or quotes are searched for
literally, never interpreted.

Updates are lazy and incremental: the read model records which aggregates
changed, and the next search re-indexes just those before it runs. The first
search builds the whole index, so opening a store never pays for it.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from mo_local.app.queries import GoalView, ProjectView
from mo_local.derived.readmodel import ReadModel
from mo_local.domain.goal import Goal
from mo_local.domain.project import Project

TRIGRAM = 3
_WORD = re.compile(r"[^\W_]+")

_SCHEMA = (
    "PRAGMA temp_store = MEMORY",
    "CREATE VIRTUAL TABLE goal_words USING fts5(summary,"
    " tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE goal_grams USING fts5(summary, tokenize = 'trigram')",
    "CREATE VIRTUAL TABLE project_words USING fts5(name, description,"
    " tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE project_grams USING fts5(name, description, tokenize = 'trigram')",
)
# bm25 column weights: a hit in a project's name counts more than one in its description.
_RANK = {"goal": "bm25({table})", "project": "bm25({table}, 4.0, 1.0)"}

log = logging.getLogger(__name__)


def fts_literal(text: str) -> str:
    """`text` as an FTS5 string literal: quoted, inner quotes doubled (no operators)."""
    return '"' + text.replace('"', '""') + '"'


def query_words(text: str) -> list[str]:
    """The words of a query as the unicode61 tokenizer would split them (roughly)."""
    return _WORD.findall(text)


class SearchIndex:
    """FTS5 index of one read model, kept in memory and refreshed lazily."""

    def __init__(self, model: ReadModel) -> None:
        self._model = model
        self._conn: sqlite3.Connection | None = None
        self._rowids: dict[str, int] = {}
        self._ids: dict[int, str] = {}
        self._next_rowid = 1

    def close(self) -> None:
        """Drop the in-memory index."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._rowids.clear()
        self._ids.clear()

    # -- maintenance ------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = sqlite3.connect(":memory:", isolation_level=None)
            for statement in _SCHEMA:
                conn.execute(statement)
            self._conn = conn
            self._model.take_changes()  # the full build below covers them
            with _batch(conn):
                self._index((aggregate_id for aggregate_id, _ in self._model.entries()), conn)
        else:
            changed = self._model.take_changes()
            if changed:
                with _batch(conn):
                    self._index(changed, conn)
        return conn

    def _index(self, aggregate_ids: Iterable[str], conn: sqlite3.Connection) -> None:
        for aggregate_id in aggregate_ids:
            rowid = self._rowids.get(aggregate_id)
            if rowid is not None:
                for table in ("goal_words", "goal_grams", "project_words", "project_grams"):
                    conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))  # noqa: S608
            goal = self._model.goal_state(aggregate_id)
            project = self._model.project_state(aggregate_id)
            if goal is None and project is None:
                continue
            if rowid is None:
                rowid = self._rowids[aggregate_id] = self._next_rowid
                self._ids[rowid] = aggregate_id
                self._next_rowid += 1
            if goal is not None and not goal.archived:
                _insert_goal(conn, rowid, goal)
            elif project is not None and not project.archived:
                _insert_project(conn, rowid, project)

    # -- queries ----------------------------------------------------------------------

    def search(
        self, text: str, goals: bool = True, projects: bool = True
    ) -> tuple[list[GoalView], list[ProjectView]]:
        """Goals and projects matching `text`, each list best match first; archived excluded."""
        text = text.strip()
        if not text:
            return [], []
        goal_ids = self._ranked_ids("goal", text) if goals else []
        project_ids = self._ranked_ids("project", text) if projects else []
        goal_views = [g for i in goal_ids if (g := self._model.goal(i)) and not g.archived]
        project_views = [p for i in project_ids if (p := self._model.project(i)) and not p.archived]
        return goal_views, project_views

    def _ranked_ids(self, kind: str, text: str) -> list[str]:
        if len(text) < TRIGRAM:
            return self._scan(kind, text)
        conn = self._connection()
        words = query_words(text)
        queries: list[tuple[str, str]] = []
        if words:
            queries.append((f"{kind}_words", " ".join(fts_literal(w) for w in words)))
            queries.append((f"{kind}_words", " ".join(fts_literal(w) + "*" for w in words)))
        queries.append((f"{kind}_grams", fts_literal(text)))
        if len(words) > 1 and all(len(w) >= TRIGRAM for w in words):
            queries.append((f"{kind}_grams", " ".join(fts_literal(w) for w in words)))
        seen: set[int] = set()
        ranked: list[str] = []
        for table, match in queries:
            for rowid in self._match(conn, kind, table, match):
                if rowid not in seen and rowid in self._ids:
                    seen.add(rowid)
                    ranked.append(self._ids[rowid])
        return ranked

    def _match(self, conn: sqlite3.Connection, kind: str, table: str, match: str) -> list[int]:
        rank = _RANK[kind].format(table=table)
        sql = (
            f"SELECT rowid, {rank} FROM {table} WHERE {table} MATCH ?"  # noqa: S608 - fixed names
        )
        try:
            rows = [(float(row[1]), int(row[0])) for row in conn.execute(sql, (match,))]
        except sqlite3.Error:
            # Should not happen with quoted literals; the query text stays out of the log.
            log.warning("search query on %s failed; treated as no match", table)
            return []
        # Equal scores in list order, not by rowid: rowids follow the order the read
        # model was filled in (replay, cache or parallel rebuild).
        ids, order = self._ids, self._model.list_order_key
        rows.sort(key=lambda hit: (hit[0], order(ids.get(hit[1], ""))))
        return [rowid for _, rowid in rows]

    def _scan(self, kind: str, text: str) -> list[str]:
        """Short queries: word-start matches, then substring matches, then by position and id."""
        needle = text.casefold()
        hits: list[tuple[int, int, str]] = []
        for aggregate_id, entry in self._model.entries():
            state = entry.state
            if kind == "goal" and isinstance(state, Goal) and not state.archived:
                haystacks = [state.summary]
            elif kind == "project" and isinstance(state, Project) and not state.archived:
                haystacks = [state.name, state.description]
            else:
                continue
            best: tuple[int, int] | None = None
            for haystack in haystacks:
                folded = haystack.casefold()
                position = folded.find(needle)
                if position < 0:
                    continue
                word_start = any(w.startswith(needle) for w in query_words(folded))
                candidate = (0 if word_start else 1, position)
                best = candidate if best is None else min(best, candidate)
            if best is not None:
                hits.append((*best, aggregate_id))
        hits.sort()
        return [aggregate_id for _tier, _position, aggregate_id in hits]


@contextmanager
def _batch(conn: sqlite3.Connection) -> Iterator[None]:
    """One transaction around many index writes (in memory, but far fewer journal steps)."""
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _insert_goal(conn: sqlite3.Connection, rowid: int, goal: Goal) -> None:
    for table in ("goal_words", "goal_grams"):
        conn.execute(
            f"INSERT INTO {table} (rowid, summary) VALUES (?, ?)",  # noqa: S608 - fixed names
            (rowid, goal.summary),
        )


def _insert_project(conn: sqlite3.Connection, rowid: int, project: Project) -> None:
    for table in ("project_words", "project_grams"):
        conn.execute(
            f"INSERT INTO {table} (rowid, name, description) VALUES (?, ?, ?)",  # noqa: S608
            (rowid, project.name, project.description),
        )
