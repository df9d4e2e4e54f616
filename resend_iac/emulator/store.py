"""SQLite state of the emulator: one connection, one lock, one transaction per write.

Every write method runs in a single ``BEGIN IMMEDIATE … COMMIT`` so that a request's
changes are either all stored or none are (also across a ``kill -9``: the database is
in WAL mode). Validation that can fail is done before anything is written.

Objects are ordered newest first by an integer ``seq`` (the rowid), which is also what
pagination cursors resolve to, so every page is an indexed range scan.

Errors are raised as :class:`APIError` carrying the API's status, name and message.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    first_name TEXT,
    last_name TEXT,
    unsubscribed INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS properties (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    fallback_value TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS contact_values (
    contact_seq INTEGER NOT NULL,
    property_seq INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (contact_seq, property_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contact_values_property ON contact_values (property_seq);
CREATE TABLE IF NOT EXISTS segments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    segment_seq INTEGER NOT NULL,
    contact_seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (segment_seq, contact_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memberships_contact ON memberships (contact_seq, segment_seq);
CREATE TABLE IF NOT EXISTS topics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    default_subscription TEXT NOT NULL,
    visibility TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    contact_seq INTEGER NOT NULL,
    topic_seq INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (contact_seq, topic_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic_seq);
CREATE TABLE IF NOT EXISTS imports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    completed_at TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    job TEXT
);
CREATE INDEX IF NOT EXISTS imports_status ON imports (status, seq);
CREATE TABLE IF NOT EXISTS import_progress (
    import_id TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    skipped INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS import_csv (
    seq INTEGER PRIMARY KEY,
    import_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (import_id, part)
);
"""

TABLES = (
    "contacts",
    "properties",
    "contact_values",
    "segments",
    "memberships",
    "topics",
    "subscriptions",
    "imports",
    "import_progress",
    "import_csv",
)

PROPERTY_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,50}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PROPERTY_TYPES = ("string", "number")
# What a CSV import's column_map may give as a type (it creates unknown properties; changelog
# "CSV contacts import", 2026-06-24): boolean too.
IMPORT_PROPERTY_TYPES = ("string", "number", "boolean")
UNKNOWNS = ("benign", "hostile")
SUBSCRIPTIONS = ("opt_in", "opt_out")
VISIBILITIES = ("public", "private")
CONTACT_FIELDS = ("email", "first_name", "last_name", "unsubscribed")


class APIError(Exception):
    """An error answer of the API: ``{"statusCode", "message", "name"}``."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status, "message": self.message, "name": self.name}


def missing(field: str) -> APIError:
    return APIError(422, "missing_required_field", f"Missing `{field}` field.")


def invalid(message: str) -> APIError:
    return APIError(422, "validation_error", message)


def not_found(what: str) -> APIError:
    return APIError(404, "not_found", f"{what} not found")


def now_text() -> str:
    """``created_at`` as the API writes it: Postgres text, microseconds, ``+00``
    (trailing zeros of the fraction dropped, like Postgres)."""
    t = datetime.now(UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + "+00"


def new_id() -> str:
    """A random (version 4) UUID as text; cheaper than ``str(uuid.uuid4())`` for imports."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value))


def valid_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 320 and bool(EMAIL_RE.match(value.strip()))


def check_value(key: str, ptype: str, value: Any) -> None:
    """A property value must match the declared type (bool is not a number)."""
    if ptype == "string":
        if not isinstance(value, str):
            raise invalid(f"The value of property `{key}` must be a string.")
    elif ptype == "boolean":
        if not isinstance(value, bool):
            raise invalid(f"The value of property `{key}` must be a boolean.")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"The value of property `{key}` must be a number.")


CONTACT_COLS = "id, email, first_name, last_name, unsubscribed, created_at"
# A list item serialised by SQLite itself (lists are the hot path: pages of 100, and
# unpaginated lists of 100k contacts).
CONTACT_JSON = (
    "json_object('id', {p}id, 'email', {p}email, 'first_name', {p}first_name,"
    " 'last_name', {p}last_name, 'created_at', {p}created_at, 'unsubscribed',"
    " json(CASE {p}unsubscribed WHEN 0 THEN 'false' ELSE 'true' END))"
)


class Store:
    """All state. Thread-safe: every access holds ``self.lock`` (the import worker runs
    on its own thread, requests on uvicorn's event loop).

    ``unknowns="hostile"`` makes emails case-sensitive keys (two contacts may differ only by
    case); ``"benign"`` compares them case-insensitively. ``list_lag`` seconds: contact lists
    (all contacts, a segment's members) leave out contacts written in the last ``list_lag``
    seconds of ``clock`` (replaceable by tests); reads by id or email are immediate."""

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
            self.conn.executescript(SCHEMA)

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

    def reset(self) -> None:
        self.written.clear()
        with self.write() as c:
            for table in TABLES:
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

    # -- contacts -----------------------------------------------------------------------

    def create_contact(
        self,
        email: str,
        fields: dict[str, Any],
        values: dict[str, Any],
        segment_ids: list[str],
        topics: list[tuple[str, str]],
    ) -> str:
        """Create a contact. An existing email is an **upsert** (resend-api-notes §11: verified
        on the live API, it silently resubscribed ~331 opted-out contacts): 201 with the
        existing id, every field the body omits reset to its default (names null,
        ``unsubscribed`` false, no property values); segments and topics given are added.
        Both profiles."""
        with self.write() as c:
            resolved = self._check_values(c, values)
            seg_seqs = self._segment_seqs(c, segment_ids)
            top_seqs = self._topic_seqs(c, topics)
            ts = now_text()
            existing = c.execute(
                "SELECT seq, id FROM contacts WHERE email_key = ?", (self.email_key(email),)
            ).fetchone()
            if existing is not None:
                seq, cid = existing
                c.execute(
                    "UPDATE contacts SET first_name = ?, last_name = ?, unsubscribed = ? WHERE seq = ?",
                    (
                        fields.get("first_name"),
                        fields.get("last_name"),
                        int(bool(fields.get("unsubscribed", False))),
                        seq,
                    ),
                )
                c.execute("DELETE FROM contact_values WHERE contact_seq = ?", (seq,))
            else:
                cid = new_id()
                cur = c.execute(
                    "INSERT INTO contacts (id, email, email_key, first_name, last_name, unsubscribed,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        cid,
                        email.strip(),
                        self.email_key(email),
                        fields.get("first_name"),
                        fields.get("last_name"),
                        int(bool(fields.get("unsubscribed", False))),
                        ts,
                    ),
                )
                seq = cur.lastrowid
            c.executemany(
                "INSERT INTO contact_values VALUES (?, ?, ?)",
                [(seq, p, json.dumps(v)) for p, v in resolved if v is not None],
            )
            c.executemany(
                "INSERT OR IGNORE INTO memberships VALUES (?, ?, ?)", [(s, seq, ts) for s in seg_seqs]
            )
            c.executemany(
                "INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?)",
                [(seq, t, sub, ts) for t, sub in top_seqs],
            )
            self.touch((seq,))
            return cid

    def get_contact(self, ref: str) -> dict[str, Any]:
        with self.lock:
            row = self._contact_row(self.conn, ref)
            if row is None:
                raise not_found("Contact")
            values = self.conn.execute(
                "SELECT p.key, p.type, v.value FROM contact_values v JOIN properties p"
                " ON p.seq = v.property_seq WHERE v.contact_seq = ? ORDER BY p.key",
                (row[0],),
            ).fetchall()
        return {
            "object": "contact",
            "id": row[1],
            "email": row[2],
            "first_name": row[3],
            "last_name": row[4],
            "created_at": row[6],
            "unsubscribed": bool(row[5]),
            "properties": {k: {"value": json.loads(v), "type": t} for k, t, v in values},
        }

    def update_contact(self, ref: str, fields: dict[str, Any], values: dict[str, Any]) -> str:
        with self.write() as c:
            row = self._contact_row(c, ref)
            if row is None:
                raise not_found("Contact")
            seq = row[0]
            resolved = self._check_values(c, values)
            sets, args = [], []
            if "email" in fields:
                email = fields["email"].strip()
                other = c.execute(
                    "SELECT seq FROM contacts WHERE email_key = ?", (self.email_key(email),)
                ).fetchone()
                if other is not None and other[0] != seq:
                    raise invalid(f"A contact with email `{email}` already exists.")
                sets += ["email = ?", "email_key = ?"]
                args += [email, self.email_key(email)]
            for name in ("first_name", "last_name"):
                if name in fields:
                    sets.append(f"{name} = ?")
                    args.append(fields[name])
            if "unsubscribed" in fields:
                sets.append("unsubscribed = ?")
                args.append(int(fields["unsubscribed"]))
            if sets:
                c.execute(f"UPDATE contacts SET {', '.join(sets)} WHERE seq = ?", (*args, seq))
            for pseq, value in resolved:
                if value is None:
                    c.execute(
                        "DELETE FROM contact_values WHERE contact_seq = ? AND property_seq = ?", (seq, pseq)
                    )
                else:
                    c.execute(
                        "INSERT OR REPLACE INTO contact_values VALUES (?, ?, ?)",
                        (seq, pseq, json.dumps(value)),
                    )
            self.touch((seq,))
            return row[1]

    def delete_contact(self, ref: str) -> str | None:
        """Delete; an unknown contact is not an error (returns None)."""
        with self.write() as c:
            row = self._contact_row(c, ref)
            if row is None:
                return None
            seq = row[0]
            c.execute("DELETE FROM contact_values WHERE contact_seq = ?", (seq,))
            c.execute("DELETE FROM memberships WHERE contact_seq = ?", (seq,))
            c.execute("DELETE FROM subscriptions WHERE contact_seq = ?", (seq,))
            c.execute("DELETE FROM contacts WHERE seq = ?", (seq,))
            return row[1]

    def list_contacts_json(self, page: dict, segment_id: str | None = None) -> tuple[list[str], bool]:
        """A page of contact list items, each already a JSON text."""
        lagging = self.lagging()
        if segment_id is None:
            where, args = ("seq NOT IN (SELECT value FROM json_each(?))", [lagging]) if lagging else ("", [])
            rows, more = self._page("contacts", CONTACT_JSON.format(p=""), where, args, page)
            return [r[0] for r in rows], more
        with self.lock:
            sseq = self._seq(self.conn, "segments", segment_id, "Segment")
        where, args = "m.segment_seq = ?", [sseq]
        if lagging:
            where += " AND m.contact_seq NOT IN (SELECT value FROM json_each(?))"
            args.append(lagging)
        rows, more = self._page(
            "memberships m JOIN contacts c ON c.seq = m.contact_seq",
            CONTACT_JSON.format(p="c."),
            where,
            args,
            page,
            seq_col="m.contact_seq",
            cursor_table="contacts",
        )
        return [r[0] for r in rows], more

    def list_contacts(self, page: dict, segment_id: str | None = None) -> tuple[list[dict], bool]:
        items, more = self.list_contacts_json(page, segment_id)
        return [json.loads(i) for i in items], more

    # -- contact properties -------------------------------------------------------------

    def create_property(self, key: str, ptype: str, fallback: Any) -> str:
        with self.write() as c:
            if c.execute("SELECT 1 FROM properties WHERE key = ?", (key,)).fetchone():
                raise invalid(f"A contact property with key `{key}` already exists.")
            pid = new_id()
            c.execute(
                "INSERT INTO properties (id, key, type, fallback_value, created_at) VALUES (?, ?, ?, ?, ?)",
                (pid, key, ptype, None if fallback is None else json.dumps(fallback), now_text()),
            )
            return pid

    def _property_dict(self, row: tuple) -> dict[str, Any]:
        return {
            "id": row[0],
            "key": row[1],
            "type": row[2],
            "fallback_value": None if row[3] is None else json.loads(row[3]),
            "created_at": row[4],
        }

    def get_property(self, pid: str) -> dict[str, Any]:
        row = self.read_one(
            "SELECT id, key, type, fallback_value, created_at FROM properties WHERE id = ?", (pid,)
        )
        if row is None:
            raise not_found("Contact property")
        return {"object": "contact_property", **self._property_dict(row)}

    def list_properties(self, page: dict) -> tuple[list[dict], bool]:
        rows, more = self._page("properties", "id, key, type, fallback_value, created_at", "", [], page)
        return [self._property_dict(r) for r in rows], more

    def update_property(self, pid: str, body: dict[str, Any]) -> None:
        with self.write() as c:
            row = c.execute("SELECT key, type FROM properties WHERE id = ?", (pid,)).fetchone()
            if row is None:
                raise not_found("Contact property")
            key, ptype = row
            if "key" in body and body["key"] != key:
                raise invalid(
                    "The `key` of a contact property cannot be changed. Delete the "
                    "property and create it again."
                )
            if "type" in body and body["type"] != ptype:
                raise invalid(
                    "The `type` of a contact property cannot be changed. Delete the "
                    "property and create it again."
                )
            if "fallback_value" in body:
                fb = body["fallback_value"]
                if fb is not None:
                    check_fallback(ptype, fb)
                c.execute(
                    "UPDATE properties SET fallback_value = ? WHERE id = ?",
                    (None if fb is None else json.dumps(fb), pid),
                )

    def delete_property(self, pid: str) -> None:
        """Delete a property and every value stored for it on contacts. Unknown id: 404."""
        with self.write() as c:
            seq = self._seq(c, "properties", pid, "Contact property")
            c.execute("DELETE FROM contact_values WHERE property_seq = ?", (seq,))
            c.execute("DELETE FROM properties WHERE seq = ?", (seq,))

    # -- segments -----------------------------------------------------------------------

    def create_segment(self, name: str) -> str:
        with self.write() as c:
            sid = new_id()
            c.execute("INSERT INTO segments (id, name, created_at) VALUES (?, ?, ?)", (sid, name, now_text()))
            return sid

    def get_segment(self, sid: str) -> dict[str, Any]:
        row = self.read_one("SELECT id, name, created_at FROM segments WHERE id = ?", (sid,))
        if row is None:
            raise not_found("Audience")  # sic: the real API says "Audience not found"
        return {"object": "segment", "id": row[0], "name": row[1], "created_at": row[2]}

    def list_segments(self, page: dict) -> tuple[list[dict], bool]:
        rows, more = self._page("segments", "id, name, created_at", "", [], page)
        return [{"id": r[0], "name": r[1], "created_at": r[2]} for r in rows], more

    def rename_segment(self, sid: str, name: str) -> None:
        with self.write() as c:
            if c.execute("UPDATE segments SET name = ? WHERE id = ?", (name, sid)).rowcount == 0:
                raise not_found("Audience")

    def delete_segment(self, sid: str) -> None:
        """Drops the segment's memberships; unknown id is not an error (HAR: 200)."""
        with self.write() as c:
            row = c.execute("SELECT seq FROM segments WHERE id = ?", (sid,)).fetchone()
            if row is not None:
                c.execute("DELETE FROM memberships WHERE segment_seq = ?", (row[0],))
                c.execute("DELETE FROM segments WHERE seq = ?", (row[0],))

    def add_membership(self, ref: str, sid: str) -> str:
        with self.write() as c:
            row = self._contact_row(c, ref)
            if row is None:
                raise not_found("Contact")
            sseq = self._seq(c, "segments", sid, "Segment")
            c.execute("INSERT OR IGNORE INTO memberships VALUES (?, ?, ?)", (sseq, row[0], now_text()))
            self.touch((row[0],))
            return row[1]

    def remove_membership(self, ref: str, sid: str) -> str:
        with self.write() as c:
            row = self._contact_row(c, ref)
            if row is None:
                raise not_found("Contact")
            sseq = self._seq(c, "segments", sid, "Segment")
            c.execute("DELETE FROM memberships WHERE segment_seq = ? AND contact_seq = ?", (sseq, row[0]))
            self.touch((row[0],))
            return row[1]

    def is_member(self, ref: str, sid: str) -> bool:
        cseq = self.contact_row(ref)[0]
        return (
            self.read_one(
                "SELECT 1 FROM memberships m JOIN segments s ON s.seq = m.segment_seq"
                " WHERE s.id = ? AND m.contact_seq = ?",
                (sid, cseq),
            )
            is not None
        )

    def list_contact_segments(self, ref: str, page: dict) -> tuple[list[dict], bool]:
        cseq = self.contact_row(ref)[0]
        rows, more = self._page(
            "memberships m JOIN segments s ON s.seq = m.segment_seq",
            "s.id, s.name, m.created_at",
            "m.contact_seq = ?",
            [cseq],
            page,
            seq_col="m.segment_seq",
            cursor_table="segments",
        )
        return [{"id": r[0], "name": r[1], "created_at": r[2]} for r in rows], more

    # -- topics -------------------------------------------------------------------------

    def create_topic(self, name: str, default: str, description: str | None, visibility: str) -> str:
        with self.write() as c:
            tid = new_id()
            c.execute(
                "INSERT INTO topics (id, name, description, default_subscription, visibility,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tid, name, description, default, visibility, now_text()),
            )
            return tid

    @staticmethod
    def _topic_dict(r: tuple) -> dict[str, Any]:
        return {
            "id": r[0],
            "name": r[1],
            "description": r[2],
            "default_subscription": r[3],
            "visibility": r[4],
            "created_at": r[5],
        }

    TOPIC_COLS = "id, name, description, default_subscription, visibility, created_at"

    def get_topic(self, tid: str) -> dict[str, Any]:
        row = self.read_one(f"SELECT {self.TOPIC_COLS} FROM topics WHERE id = ?", (tid,))
        if row is None:
            raise not_found("Topic")
        return {"object": "topic", **self._topic_dict(row)}

    def list_topics(self, page: dict) -> tuple[list[dict], bool]:
        rows, more = self._page("topics", self.TOPIC_COLS, "", [], page)
        return [self._topic_dict(r) for r in rows], more

    def update_topic(self, tid: str, changes: dict[str, Any]) -> None:
        with self.write() as c:
            row = c.execute("SELECT default_subscription FROM topics WHERE id = ?", (tid,)).fetchone()
            if row is None:
                raise not_found("Topic")
            if "default_subscription" in changes:
                if changes.pop("default_subscription") != row[0]:
                    raise invalid("The `default_subscription` of a topic cannot be changed after creation.")
            if changes:
                cols = ", ".join(f"{k} = ?" for k in changes)
                c.execute(f"UPDATE topics SET {cols} WHERE id = ?", (*changes.values(), tid))

    def delete_topic(self, tid: str) -> None:
        """Drops the topic's subscriptions. Unknown id: 404."""
        with self.write() as c:
            seq = self._seq(c, "topics", tid, "Topic")
            c.execute("DELETE FROM subscriptions WHERE topic_seq = ?", (seq,))
            c.execute("DELETE FROM topics WHERE seq = ?", (seq,))

    def list_contact_topics(self, ref: str, page: dict) -> tuple[list[dict], bool]:
        """Only topics with a recorded subscription (unset ones follow the topic's default)."""
        cseq = self.contact_row(ref)[0]
        rows, more = self._page(
            "subscriptions x JOIN topics t ON t.seq = x.topic_seq",
            "t.id, t.name, t.description, x.subscription, x.created_at",
            "x.contact_seq = ?",
            [cseq],
            page,
            seq_col="x.topic_seq",
            cursor_table="topics",
        )
        return [
            {"id": r[0], "name": r[1], "description": r[2], "subscription": r[3], "created_at": r[4]}
            for r in rows
        ], more

    def update_contact_topics(self, ref: str, topics: list[tuple[str, str]]) -> str:
        with self.write() as c:
            row = self._contact_row(c, ref)
            if row is None:
                raise not_found("Contact")
            resolved = self._topic_seqs(c, topics)
            ts = now_text()
            for tseq, sub in resolved:
                c.execute(
                    "INSERT INTO subscriptions VALUES (?, ?, ?, ?) ON CONFLICT"
                    " (contact_seq, topic_seq) DO UPDATE SET subscription = excluded.subscription",
                    (row[0], tseq, sub, ts),
                )
            self.touch((row[0],))
            return row[1]


def check_fallback(ptype: str, value: Any) -> None:
    if ptype == "string" and not isinstance(value, str):
        raise invalid("The `fallback_value` must be a string for a property of type `string`.")
    if ptype == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise invalid("The `fallback_value` must be a number for a property of type `number`.")
