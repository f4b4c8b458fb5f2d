"""The durable store: an engine's records, event log, live states and transitions in SQLite.

One file (WAL mode), written in one transaction per ingested event, per load and per
adjustment: a process killed at any moment leaves the file as it was before or after each
step, never between. Reopened, the engine finds its contacts, accounts, events, states and the
baselines of its triggers, so re-ingesting the same stream counts nothing twice and fires no
transition twice. Commits do not wait for the disk (``synchronous=NORMAL``): they survive the
process dying, and lose at most the last moments before a power cut.

The rules that produced the states are recorded by the hash of their text; opening the store
with other rules re-derives every state from the stored events (``keep_events=False`` stores
only the event ids, and such a store refuses other rules).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from .errors import LeadDSLError, RecordError

__all__ = ["Store", "rules_version"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS contacts (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, record BLOB,
                                     source TEXT);
CREATE TABLE IF NOT EXISTS accounts (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, record BLOB,
                                     source TEXT);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, contact TEXT, id TEXT, at REAL,
                                   action TEXT, object TEXT, name TEXT, UNIQUE (contact, id));
CREATE TABLE IF NOT EXISTS adjustments (seq INTEGER PRIMARY KEY, subject TEXT, who TEXT, id TEXT,
                                        at REAL, model TEXT, points REAL, reason TEXT,
                                        UNIQUE (subject, who, id));
CREATE TABLE IF NOT EXISTS states (contact TEXT PRIMARY KEY, data BLOB, rules TEXT);
CREATE TABLE IF NOT EXISTS known (subject TEXT, id TEXT, snapshot BLOB, total REAL, rules TEXT,
                                  PRIMARY KEY (subject, id));
CREATE TABLE IF NOT EXISTS transitions (seq INTEGER PRIMARY KEY, data BLOB, rules TEXT);
"""


def rules_version(source: str) -> str:
    """The version of a rule script: the first 16 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


class Store:
    """A SQLite file holding one engine's data. Not shared between processes at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LeadDSLError(f"cannot open store {self.path!r}: {exc}") from None
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside happen together or not at all (nested uses join the outer one);
        a RecordError keeps what came before it, as the engine does."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except RecordError:
            # A bad record stops a load after the records before it were taken in: the engine
            # keeps them, so the file does too.
            self.db.execute("COMMIT")
            raise
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    def close(self) -> None:
        self.db.close()

    # ---- meta ------------------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # ---- writing ----------------------------------------------------------------------------

    def add_record(self, table: str, ident: str, record: Any, source: str) -> None:
        assert table in ("contacts", "accounts")
        self.db.execute(
            f"INSERT OR IGNORE INTO {table} (id, record, source) VALUES (?, ?, ?)",  # noqa: S608
            (ident, orjson.dumps(record, default=str), source),
        )

    def add_event(self, contact: str, eid: str | None, at: float, action: str, obj: str | None,
                  name: str | None, keep: bool) -> None:
        """Store an event (or only its id). An event without an id (None) is stored with a
        NULL id, which the UNIQUE constraint lets through: it can never be recognised again."""
        row: tuple[Any, ...]
        if keep:
            row = (contact, eid, at, action, obj, name)
        elif eid is None:
            return  # nothing to keep: no id to recognise it by, and its state is saved
        else:
            row = (contact, eid, None, None, None, None)
        self.db.execute(
            "INSERT OR IGNORE INTO events (contact, id, at, action, object, name) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )

    def add_adjustment(self, subject: str, who: str, entry: tuple[float, str, str, float, str]
                       ) -> None:
        at, eid, model, points, reason = entry
        self.db.execute(
            "INSERT OR IGNORE INTO adjustments (subject, who, id, at, model, points, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (subject, who, eid, at, model, points, reason),
        )

    def save_state(self, contact: str, data: Any, rules: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO states VALUES (?, ?, ?)",
                        (contact, orjson.dumps(data), rules))

    def save_known(self, subject: str, ident: str, snapshot: Any, total: float,
                   rules: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO known VALUES (?, ?, ?, ?, ?)",
                        (subject, ident, orjson.dumps(snapshot), total, rules))

    def add_transition(self, data: dict[str, Any], rules: str) -> None:
        self.db.execute("INSERT INTO transitions (data, rules) VALUES (?, ?)",
                        (orjson.dumps(data), rules))

    def clear_derived(self) -> None:
        """Forget states and trigger baselines (they are re-derived under new rules)."""
        self.db.execute("DELETE FROM states")
        self.db.execute("DELETE FROM known")

    # ---- reading ----------------------------------------------------------------------------

    def records(self, table: str) -> list[tuple[str, Any, str]]:
        assert table in ("contacts", "accounts")
        rows = self.db.execute(f"SELECT id, record, source FROM {table} ORDER BY seq")  # noqa: S608
        return [(str(i), orjson.loads(r), str(s)) for i, r, s in rows]

    def events(
        self,
    ) -> list[tuple[int, str, str | None, float | None, str | None, str | None, str | None]]:
        rows = self.db.execute(
            "SELECT seq, contact, id, at, action, object, name FROM events ORDER BY seq")
        return list(rows)

    def adjustments(self) -> list[tuple[str, str, tuple[float, str, str, float, str]]]:
        rows = self.db.execute(
            "SELECT subject, who, at, id, model, points, reason FROM adjustments ORDER BY seq")
        return [(s, w, (at, i, m, p, r)) for s, w, at, i, m, p, r in rows]

    def states(self) -> dict[str, Any]:
        return {c: orjson.loads(d) for c, d in self.db.execute("SELECT contact, data FROM states")}

    def known(self) -> dict[tuple[str, str], Any]:
        rows = self.db.execute("SELECT subject, id, snapshot FROM known")
        return {(s, i): orjson.loads(d) for s, i, d in rows}

    def transitions(self, after: int = 0) -> list[tuple[int, dict[str, Any], str]]:
        rows = self.db.execute(
            "SELECT seq, data, rules FROM transitions WHERE seq > ? ORDER BY seq", (after,))
        return [(int(seq), orjson.loads(d), str(r)) for seq, d, r in rows]
