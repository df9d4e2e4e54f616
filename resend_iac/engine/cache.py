"""The refresh cache: what was last read of each live contact's details, as keyed digests.

A plan needs each managed contact's custom property values (``GET /contacts/{id}``) and topic
subscriptions (``GET /contacts/{id}/topics``): list items carry neither, so a plan of N contacts
costs up to 2N requests. The cache remembers, per contact id, *digests* of what was last read,
so a later plan can tell "live still equals what the files declare" without reading it again
(``engine/live.py`` decides what is read; see docs/plan-apply.md).

What the file holds (SQLite, stdlib; default ``.resend-iac/cache.sqlite``):

- ``meta``: a random per-file ``salt`` and a ``check`` value (tells whether the key that opens
  the file is the key that wrote it; if not, every entry is dropped: they could never match).
- ``contacts``: one row per contact **id** (a team-unique UUID: a contact deleted and
  re-created gets a new id, so it is never served from an old entry): ``props`` and ``topics``
  (sorted, concatenated 16-byte digests, or NULL when not read) and ``verified_at`` (UNIX time of the
  read). No email, name or value is stored.

Digests are HMAC-SHA256, keyed with ``HMAC(salt, API key)``: someone holding the file but not
the API key cannot brute-force even low-entropy values ("pro", "opt_out"), and the key can read
the team anyway. One digest per (contact id, property id, value) and per (contact id, topic id,
explicit subscription or none): a property or topic re-created under the same name has a new
id, so its old digests never match. Costs of this choice: rotating the API key empties the
cache (one full refresh); plan and apply jobs must use the same key to share a cache; and
``--local`` (the embedded emulator, key ``re_local``) is keyed by the salt alone, which is
fine for local, made-up data.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from resend_iac.errors import ResendIACError

DEFAULT_PATH = ".resend-iac/cache.sqlite"
ENV_VAR = "RESEND_IAC_CACHE"
SCHEMA = 1
DIGEST = 16  # bytes kept of each HMAC-SHA256
_LABEL = b"resend-iac refresh cache v1\0"


class CacheError(ResendIACError):
    pass


class _Corrupt(Exception):
    """SQLite finds the cache file corrupt (not a database, malformed): moved aside."""


_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def canonical_value(value: Any) -> bytes:
    """A property value as compared by the diff, type-tagged: numbers by value (5 == 5.0)."""
    if value is None:
        return b"z"
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, bool):
        return b"b1" if value else b"b0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)):
        return b"n" + repr(value).encode()
    return (
        b"j"
        + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    )


class Entry:
    """A cached contact: ``props``/``topics`` are concatenated 16-byte digests (None: not read)."""

    __slots__ = ("props", "topics", "verified_at")

    def __init__(self, props: bytes | None, topics: bytes | None, verified_at: float) -> None:
        self.props = props
        self.topics = topics
        self.verified_at = verified_at


def holds(blob: bytes, digest: bytes) -> bool:
    """``digest`` is one of the 16-byte digests concatenated in ``blob``."""
    i = blob.find(digest)
    while i != -1:
        if i % DIGEST == 0:
            return True
        i = blob.find(digest, i + 1)
    return False


def _join(digests: Iterable[bytes] | None) -> bytes | None:
    return None if digests is None else b"".join(sorted(set(digests)))


class RefreshCache:
    """Open with ``RefreshCache.open(path, secret)``; entries are loaded into memory once
    (``entries``: contact id -> Entry); ``put``/``drop`` write through in one transaction per call."""

    def __init__(self, conn: sqlite3.Connection, key: bytes, path: str) -> None:
        self.conn = conn
        self.key = key
        self.path = path
        self.warnings: list[str] = []  # said once by the caller (a corrupt file moved aside)
        self.entries: dict[str, Entry] = {}
        for cid, props, topics, at in conn.execute("SELECT id, props, topics, verified_at FROM contacts"):
            # A row of another shape (a file edited by hand) is left out: that contact is read.
            if (
                isinstance(cid, str)
                and isinstance(at, (int, float))
                and 0 <= at < 1e11
                and all(b is None or isinstance(b, bytes) for b in (props, topics))
            ):
                self.entries[cid] = Entry(props, topics, float(at))

    @classmethod
    def open(cls, path: str | os.PathLike[str], secret: str) -> "RefreshCache":
        """The cache at ``path`` (created if missing). A file SQLite finds corrupt (random
        bytes, truncated, a failed integrity check) is moved aside to ``<path>.corrupt`` and a
        new, empty cache takes its place; ``warnings`` says so. Anything else (unreadable,
        locked) is a ``CacheError``."""
        try:
            return cls._open(path, secret)
        except _Corrupt as e:
            aside = f"{path}.corrupt"
            try:
                os.replace(path, aside)
            except OSError as moved:
                raise CacheError(
                    f"{path}: the refresh cache is corrupt ({e}) and cannot be moved aside "
                    f"({moved.strerror or moved}); delete it, or pass --no-cache"
                ) from None
            cache = cls._open(path, secret)
            cache.warnings.append(
                f"{path}: the refresh cache was corrupt ({e}); moved it aside to {aside} and "
                "started a new one (this run reads every contact detail it needs)"
            )
            return cache

    @classmethod
    def _open(cls, path: str | os.PathLike[str], secret: str) -> "RefreshCache":
        p = Path(path)
        conn: sqlite3.Connection | None = None
        try:
            if str(p) != ":memory:":
                p.parent.mkdir(parents=True, exist_ok=True)
                if not p.exists():  # owner-only: digests, but of the team's data
                    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(str(p), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=DELETE")
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise _Corrupt("integrity check: " + " ".join(str(problem).split())[:80])
            with conn:
                conn.execute("BEGIN")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, props BLOB, "
                    "topics BLOB, verified_at REAL NOT NULL)"
                )
                meta = dict(conn.execute("SELECT k, v FROM meta"))
                if meta.get("schema") != str(SCHEMA).encode() or not isinstance(meta.get("salt"), bytes):
                    conn.execute("DELETE FROM contacts")
                    meta = {"schema": str(SCHEMA).encode(), "salt": secrets.token_bytes(32)}
                    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
                key = hmac.digest(meta["salt"], _LABEL + secret.encode(), "sha256")
                check = hmac.digest(key, b"check", "sha256")[:DIGEST]
                if meta.get("check") != check:  # another key wrote it (or none): useless entries
                    conn.execute("DELETE FROM contacts")
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('check', ?)", (check,))
            return cls(conn, key, str(path))
        except _Corrupt:
            if conn is not None:
                conn.close()
            raise
        except sqlite3.DatabaseError as e:
            if conn is not None:
                conn.close()
            if str(p) != ":memory:" and (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF in _CORRUPT_CODES:
                raise _Corrupt(str(e)) from None
            raise CacheError(
                f"{path}: cannot use the refresh cache ({e}); delete it, or pass --no-cache"
            ) from None
        except OSError as e:
            raise CacheError(
                f"{path}: cannot open the refresh cache: {e.strerror or e}; pass --cache PATH or --no-cache"
            ) from None

    def close(self) -> None:
        self.conn.close()

    # -- digests -----------------------------------------------------------------------

    def prop_digest(self, contact_id: str, property_id: str, value: Any) -> bytes:
        msg = b"p\0" + contact_id.encode() + b"\0" + property_id.encode() + b"\0" + canonical_value(value)
        return hmac.digest(self.key, msg, "sha256")[:DIGEST]

    def topic_digest(self, contact_id: str, topic_id: str, subscription: str | None) -> bytes:
        msg = b"t\0" + contact_id.encode() + b"\0" + topic_id.encode() + b"\0" + (subscription or "").encode()
        return hmac.digest(self.key, msg, "sha256")[:DIGEST]

    # -- writes ------------------------------------------------------------------------

    def put(
        self,
        rows: Iterable[tuple[str, Iterable[bytes] | None, Iterable[bytes] | None]],
        at: float | None = None,
    ) -> None:
        at = time.time() if at is None else at
        data = []
        for cid, props, topics in rows:
            p, t = _join(props), _join(topics)
            self.entries[cid] = Entry(p, t, at)
            data.append((cid, p, t, at))
        if data:
            self._write("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?)", data)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany(sql, rows)
        except sqlite3.Error as e:
            raise CacheError(
                f"{self.path}: cannot write the refresh cache ({e}); nothing was "
                "applied. Delete it, or pass --no-cache"
            ) from None

    def drop(self, ids: Iterable[str]) -> int:
        gone = [(i,) for i in ids if i and self.entries.pop(i, None) is not None]
        if gone:
            self._write("DELETE FROM contacts WHERE id = ?", gone)
        return len(gone)

    def keep_only(self, ids: Iterable[str]) -> int:
        """Drop the entries of contacts no longer listed (deleted live)."""
        alive = set(ids)
        return self.drop([i for i in self.entries if i not in alive])


def cache_path(option: str | None, no_cache: bool) -> str | None:
    """``--cache PATH`` > ``$RESEND_IAC_CACHE`` > the default; None with ``--no-cache``."""
    if no_cache:
        return None
    return option or os.environ.get(ENV_VAR) or DEFAULT_PATH
