"""The core of the emulator's SQLite state: one connection, one lock, one transaction per write.

Every write method runs in a single ``BEGIN IMMEDIATE … COMMIT`` so that a request's
changes are either all stored or none are (also across a ``kill -9``: the database is
in WAL mode). Validation that can fail is done before anything is written.

Objects are ordered newest first by an integer ``seq`` (the rowid), which is also what
pagination cursors resolve to, so every page is an indexed range scan.

Errors are raised as :class:`APIError` carrying the API's status, name and message.

``StoreCore`` holds the plumbing; each resource module adds a subclass with its tables
(class attributes ``SCHEMA`` and ``TABLES``, created and reset by the core) and its
methods, and ``store.Store`` puts them together.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from resend_iac.emulator.errors import UNKNOWNS, APIError, check_value, invalid, is_uuid, not_found


class StoreCore:
    """All state. Thread-safe: every access holds ``self.lock`` (the import worker runs
    on its own thread, requests on uvicorn's event loop).

    ``unknowns="hostile"`` makes emails case-sensitive keys (two contacts may differ only by
    case); ``"benign"`` compares them case-insensitively. ``list_lag`` seconds: contact lists
    (all contacts, a segment's members) leave out contacts written in the last ``list_lag``
    seconds of ``clock`` (replaceable by tests); reads by id or email are immediate."""

    SCHEMA = ""  # SQL creating this class's tables (each resource subclass has its own)
    TABLES: tuple[str, ...] = ()  # the tables reset() empties

    def __init__(self, path: str = ":memory:", *, unknowns: str = "benign", list_lag: float = 0.0) -> None:
        if unknowns not in UNKNOWNS:
            raise ValueError(f"unknowns must be one of {UNKNOWNS}, not {unknowns!r}")
        self.unknowns = unknowns
        self.hostile = unknowns == "hostile"
        self.list_lag = float(list_lag)
        self.clock_offset = 0.0  # seconds added by advance() (tests skip a lag, not wait it)
        self.written: dict[int, float] = {}  # contact seq -> clock() of its last write
        self.path = path
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.RLock()
        with self.lock:
            if path != ":memory:":
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            for cls in reversed(type(self).__mro__):
                if cls.__dict__.get("SCHEMA"):
                    self.conn.executescript(cls.__dict__["SCHEMA"])

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed whole or rolled back whole."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def read(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def read_one(self, sql: str, args: tuple | list = ()) -> tuple | None:
        with self.lock:
            return self.conn.execute(sql, args).fetchone()

    def email_key(self, email: str) -> str:
        """The key contacts are unique by: the trimmed email, lower-cased unless hostile."""
        email = email.strip()
        return email if self.hostile else email.lower()

    def clock(self) -> float:
        """The time ``list_lag`` is measured in: monotonic seconds, plus ``advance()``s."""
        return time.monotonic() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for ``list_lag`` at once (``POST /_emulator/advance``)."""
        self.clock_offset += max(0.0, float(seconds))

    def touch(self, seqs: Any) -> None:
        """Note contacts as written now (for ``list_lag``)."""
        if self.list_lag > 0:
            now = self.clock()
            for seq in seqs:
                self.written[seq] = now

    def lagging(self) -> str | None:
        """The seqs lists must leave out now, as a JSON array (None when there are none)."""
        if self.list_lag <= 0 or not self.written:
            return None
        cutoff = self.clock() - self.list_lag
        with self.lock:
            for seq in [s for s, t in self.written.items() if t <= cutoff]:
                del self.written[seq]
            return json.dumps(list(self.written)) if self.written else None

    def tables(self) -> list[str]:
        """Every table of every resource class this store is made of."""
        return [t for cls in type(self).__mro__ for t in cls.__dict__.get("TABLES", ())]

    def reset(self) -> None:
        self.written.clear()
        with self.write() as c:
            for table in self.tables():
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM sqlite_sequence")

    def _page(
        self,
        table: str,
        cols: str,
        where: str,
        args: list,
        page: dict,
        seq_col: str = "seq",
        cursor_table: str | None = None,
        cursor_col: str = "seq",
    ) -> tuple[list[tuple], bool]:
        """A page of ``table`` newest first. ``page`` holds limit (None = all), after and
        before (object ids, resolved to seqs in ``cursor_table``)."""
        limit, after, before = page.get("limit"), page.get("after"), page.get("before")
        cursor = after or before
        conds = [where] if where else []
        args = list(args)
        if cursor:
            row = self.read_one(f"SELECT {cursor_col} FROM {cursor_table or table} WHERE id = ?", (cursor,))
            if row is None:
                raise APIError(
                    422,
                    "invalid_parameter",
                    f"The `{'after' if after else 'before'}` cursor `{cursor}` does not match any object.",
                )
            conds.append(f"{seq_col} {'<' if after else '>'} ?")
            args.append(row[0])
        order = "ASC" if before else "DESC"
        sql = f"SELECT {cols} FROM {table}"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += f" ORDER BY {seq_col} {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit + 1)
        rows = self.read(sql, args)
        has_more = False
        if limit is not None and len(rows) > limit:
            has_more = True
            rows = rows[:limit]
        if before:
            rows.reverse()
        return rows, has_more

    # -- lookups ------------------------------------------------------------------------

    def _contact_row(self, c: sqlite3.Connection, ref: str) -> tuple | None:
        """(seq, id, email, first_name, last_name, unsubscribed, created_at) by id or email."""
        cols = "seq, id, email, first_name, last_name, unsubscribed, created_at"
        if is_uuid(ref):
            row = c.execute(f"SELECT {cols} FROM contacts WHERE id = ?", (ref.lower(),)).fetchone()
            if row is not None:
                return row
        return c.execute(
            f"SELECT {cols} FROM contacts WHERE email_key = ?", (self.email_key(ref),)
        ).fetchone()

    def contact_row(self, ref: str) -> tuple:
        with self.lock:
            row = self._contact_row(self.conn, ref)
        if row is None:
            raise not_found("Contact")
        return row

    def _seq(self, c: sqlite3.Connection, table: str, ident: str, what: str) -> int:
        row = c.execute(f"SELECT seq FROM {table} WHERE id = ?", (ident,)).fetchone()
        if row is None:
            raise not_found(what)
        return row[0]

    def _properties(self, c: sqlite3.Connection) -> dict[str, tuple[int, str]]:
        return {k: (s, t) for s, k, t in c.execute("SELECT seq, key, type FROM properties")}

    def _segment_seqs(self, c: sqlite3.Connection, ids: list[str]) -> list[int]:
        return [self._seq(c, "segments", i, "Segment") for i in ids]

    def _topic_seqs(self, c: sqlite3.Connection, topics: list[tuple[str, str]]) -> list[tuple[int, str]]:
        return [(self._seq(c, "topics", i, "Topic"), s) for i, s in topics]

    def _check_values(self, c: sqlite3.Connection, values: dict[str, Any]) -> list[tuple[int, Any]]:
        """Resolve ``{key: value}`` to ``[(property_seq, value|None)]``, checking types."""
        props = self._properties(c)
        out = []
        for key, value in values.items():
            if key not in props:
                raise invalid(f"The property `{key}` does not exist. Create it as a contact property first.")
            seq, ptype = props[key]
            if value is not None:
                check_value(key, ptype, value)
            out.append((seq, value))
        return out
