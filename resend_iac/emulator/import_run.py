"""Contact imports, the asynchronous half: a queued job's rows applied in chunks, each one
transaction (``run``). Row rules: imports.py."""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import new_id, now_text
from resend_iac.emulator.import_csv import parse_rows

CHUNK_ROWS = 250  # rows applied per transaction (the store lock is free between chunks): ~5 ms held
PAUSE = 0.001  # seconds between chunks


def run(store: StoreCore, import_id: str, job: dict[str, Any]) -> None:
    """Apply a job in chunks of ``CHUNK_ROWS`` rows, each chunk one transaction that also
    stores the counts so far; the last one also sets ``completed``. Between chunks the
    store lock is free, so other requests wait for one chunk at most, not a whole import
    (they may see the contacts of the chunks done so far, as with the real API's
    asynchronous imports). A killed server leaves the import ``in_progress`` with the
    counts of its committed chunks (table ``import_progress``); run again, it skips the rows
    those counts cover.

    Batched: existing contacts are looked up by chunks of emails, new ones inserted with
    ``executemany`` (seqs assigned here, above any seq ever used, so cursors stay sane)."""
    upsert = job["on_conflict"] == "upsert"
    reset = upsert and store.hostile  # an upsert resets what the row does not give
    counts = {"total": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0}
    with store.write() as c:  # parsing needs no lock: only the property types are read here
        if c.execute("SELECT 1 FROM imports WHERE id = ?", (import_id,)).fetchone() is None:
            return  # reset meanwhile
        for key, ptype in (job["columns"].get("new_properties") or {}).items():
            c.execute(
                "INSERT INTO properties (id, key, type, fallback_value, created_at)"
                " SELECT ?, ?, ?, NULL, ? WHERE NOT EXISTS"
                " (SELECT 1 FROM properties WHERE key = ?)",
                (new_id(), key, ptype, now_text(), key),
            )
        # The counts of committed chunks live in their own small row: updating the imports
        # row would rewrite its job (the whole CSV) at every chunk.
        done = c.execute(
            "SELECT created, updated, skipped FROM import_progress WHERE import_id = ?", (import_id,)
        ).fetchone() or (0, 0, 0)
        props = {k: (s, t) for s, k, t in c.execute("SELECT seq, key, type FROM properties")}
    # Parsed a chunk at a time too (a long pure-Python stretch slows every request down).
    rows = iter(parse_rows(job, props, counts))
    # Resumed after a kill: the committed chunks' rows are done, their counts stored.
    for _ in itertools.islice(rows, sum(done)):
        pass
    counts["created"], counts["updated"], counts["skipped"] = done
    ts = now_text()
    chunk = list(itertools.islice(rows, CHUNK_ROWS))
    with _Checkpointer(store) as checkpointer:
        _run_chunks(store, import_id, job, (upsert, reset), counts, ts, rows, chunk, checkpointer)


def _run_chunks(
    store: StoreCore,
    import_id: str,
    job: dict[str, Any],
    mode: tuple[bool, bool],
    counts: dict[str, int],
    ts: str,
    rows: Iterator,
    chunk: list,
    checkpointer: "_Checkpointer",
) -> None:
    # What earlier chunks did, so that a row repeating an email of an earlier chunk ends as
    # it would in one transaction: a contact this import created is merged into (as a
    # repeat within a chunk), and a contact it reset keeps the earlier rows' values.
    seen = _Seen()
    final = False
    while not final:
        following = list(itertools.islice(rows, CHUNK_ROWS)) if len(chunk) == CHUNK_ROWS else []
        final = not following  # all rows parsed: the counts are complete
        with store.write() as c:
            if c.execute("SELECT 1 FROM imports WHERE id = ?", (import_id,)).fetchone() is None:
                return  # reset meanwhile
            seg_seqs = [
                r[0]
                for sid in job["segments"]
                for r in c.execute("SELECT seq FROM segments WHERE id = ?", (sid,))
            ]
            top_seqs = [
                (r[0], sub)
                for tid, sub in job["topics"]
                for r in c.execute("SELECT seq FROM topics WHERE id = ?", (tid,))
            ]
            _apply_rows(store, c, chunk, mode, counts, seg_seqs, top_seqs, ts, seen)
            if final:
                c.execute(
                    "UPDATE imports SET status = 'completed', completed_at = ?, total = ?,"
                    " created = ?, updated = ?, skipped = ?, failed = ?, job = NULL WHERE id = ?",
                    (
                        now_text(),
                        counts["total"],
                        counts["created"],
                        counts["updated"],
                        counts["skipped"],
                        counts["failed"],
                        import_id,
                    ),
                )
                c.execute("DELETE FROM import_progress WHERE import_id = ?", (import_id,))
                c.execute("DELETE FROM import_csv WHERE import_id = ?", (import_id,))
            else:
                c.execute(
                    "INSERT OR REPLACE INTO import_progress VALUES (?, ?, ?, ?)",
                    (import_id, counts["created"], counts["updated"], counts["skipped"]),
                )
        chunk = following
        if not final:
            checkpointer.chunk_done()
            # The lock is not fair, and the GIL favours this busy thread: a short pause lets
            # the requests that waited for this chunk run first.
            time.sleep(PAUSE)


class _Checkpointer:
    """WAL checkpoints off the store lock during a long import. SQLite checkpoints in the
    COMMIT that fills the WAL past 1,000 pages, copying and fsyncing with the lock held
    (100+ ms on a busy disk). From an import's ``EVERY``-th chunk on (small imports are
    left alone), the store's connection does none, and a connection of the worker's own
    runs a PASSIVE checkpoint (concurrent with the store's readers and writers) every
    ``EVERY`` chunks. Nothing to do for an in-memory store."""

    EVERY = 16  # chunks (4,000 rows)

    def __init__(self, store: StoreCore) -> None:
        self.store = store
        self.conn: sqlite3.Connection | None = None
        self.count = 0

    def __enter__(self) -> "_Checkpointer":
        return self

    def chunk_done(self) -> None:
        self.count += 1
        if self.count % self.EVERY or self.store.path == ":memory:":
            return
        if self.conn is None:
            with self.store.lock:
                self.store.conn.execute("PRAGMA wal_autocheckpoint = 0")
            self.conn = sqlite3.connect(self.store.path, isolation_level=None)
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def __exit__(self, *exc: Any) -> None:
        if self.conn is not None:
            self.conn.close()
            with self.store.lock, contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                self.store.conn.execute("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default


class _Seen:
    """Contacts earlier chunks of an import created (email key -> seq) or reset (seqs)."""

    def __init__(self) -> None:
        self.created: dict[str, int] = {}
        self.reset: set[int] = set()


def _apply_rows(
    store: StoreCore,
    c: Any,
    rows: list,
    mode: tuple[bool, bool],
    counts: dict[str, int],
    seg_seqs: list[int],
    top_seqs: list[tuple[int, str]],
    ts: str,
    seen: _Seen,
) -> None:
    """One chunk of parsed rows, inside the caller's transaction (see ``_run_chunks``):
    each row sorted into what it does (``_sort_rows``), then all of it written at once."""
    batch = _Batch(_known_seqs(store, c, rows), _last_seq(c))
    _sort_rows(store, rows, mode, counts, ts, seen, batch)
    _write_batch(c, batch, seg_seqs, top_seqs, ts, seen)
    if batch.new:  # benign: an unsubscribe survives deletion (unknown; contacts.py)
        store.recall_unsubscribes(c, min(rec[0] for rec in batch.new.values()))  # type: ignore[attr-defined]
    store.touch(batch.touched)
    seen.created.update((key, rec[0]) for key, rec in batch.new.items())
    seen.reset.update(r[3] for r in batch.resets)


class _Batch:
    """What a chunk's rows do: contacts to insert, update (non-empty cells) or reset (all
    fields), contacts touched (for segments, topics and ``list_lag``), values to store."""

    def __init__(self, known: dict[str, int], last: int) -> None:
        self.known = known  # email key -> seq of the contacts that existed before the chunk
        self.last = last  # the highest contact seq ever used
        self.new: dict[str, list] = {}  # email_key -> [seq, id, email, first, last, unsub, ts]
        self.updates: list[tuple] = []
        self.resets: list[tuple] = []
        self.touched: list[int] = []
        self.values: list[tuple] = []


def _known_seqs(store: StoreCore, c: Any, rows: list) -> dict[str, int]:
    """The seqs of the existing contacts among the rows' emails (by email key)."""
    keys = list({store.email_key(email) for email, _, _ in rows})
    known: dict[str, int] = {}
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        known.update(
            c.execute(
                f"SELECT email_key, seq FROM contacts WHERE email_key IN ({','.join('?' * len(part))})", part
            ).fetchall()
        )
    return known


def _last_seq(c: Any) -> int:
    return c.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name ="
        " 'contacts'), 0), coalesce((SELECT max(seq) FROM contacts), 0))"
    ).fetchone()[0]


def _sort_rows(
    store: StoreCore,
    rows: list,
    mode: tuple[bool, bool],
    counts: dict[str, int],
    ts: str,
    seen: _Seen,
    batch: _Batch,
) -> None:
    """Decide, row by row, what each does (into ``batch``), and count it."""
    upsert, reset = mode
    new, known = batch.new, batch.known
    for email, changes, vals in rows:
        key = store.email_key(email)
        names = (changes.get("first_name"), changes.get("last_name"))
        if key in new:  # repeated in this CSV
            if not upsert:
                counts["skipped"] += 1
                continue
            rec = new[key]
            for i, name in ((3, "first_name"), (4, "last_name"), (5, "unsubscribed")):
                if name in changes:
                    rec[i] = changes[name]
            seq = rec[0]
            counts["updated"] += 1
        elif key in seen.created:  # repeated in this CSV, created by an earlier chunk
            if not upsert:
                counts["skipped"] += 1
                continue
            seq = seen.created[key]
            if changes:
                batch.updates.append((*names, changes.get("unsubscribed"), seq))
            counts["updated"] += 1
        elif key in known:
            if not upsert:
                counts["skipped"] += 1
                if store.hostile:  # unknown: the import's segments/topics reach it anyway
                    batch.touched.append(known[key])
                continue
            seq = known[key]
            if reset:
                batch.resets.append((*names, changes.get("unsubscribed", 0), seq))
            elif changes:
                batch.updates.append((*names, changes.get("unsubscribed"), seq))
            counts["updated"] += 1
        else:
            batch.last += 1
            seq = batch.last
            new[key] = [seq, new_id(), email, *names, changes.get("unsubscribed", 0), ts]
            counts["created"] += 1
        batch.touched.append(seq)
        batch.values.extend((seq, p, json.dumps(v)) for p, v in vals.items())


def _write_batch(
    c: Any, batch: _Batch, seg_seqs: list[int], top_seqs: list[tuple[int, str]], ts: str, seen: _Seen
) -> None:
    """Write what ``_sort_rows`` decided, a statement per kind of change."""
    c.executemany(
        "INSERT INTO contacts (seq, id, email, first_name, last_name, unsubscribed,"
        " created_at, email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*rec, key) for key, rec in batch.new.items()],
    )
    c.executemany(
        "UPDATE contacts SET first_name = ?, last_name = ?, unsubscribed = ? WHERE seq = ?", batch.resets
    )
    c.executemany(
        "DELETE FROM contact_values WHERE contact_seq = ?",
        [(r[3],) for r in batch.resets if r[3] not in seen.reset],
    )
    c.executemany(
        "UPDATE contacts SET first_name = coalesce(?, first_name), last_name ="
        " coalesce(?, last_name), unsubscribed = coalesce(?, unsubscribed)"
        " WHERE seq = ?",
        batch.updates,
    )
    c.executemany("INSERT OR REPLACE INTO contact_values VALUES (?, ?, ?)", batch.values)
    for sseq in seg_seqs:
        c.executemany(
            "INSERT OR IGNORE INTO memberships VALUES (?, ?, ?)", [(sseq, seq, ts) for seq in batch.touched]
        )
    for tseq, sub in top_seqs:
        c.executemany(
            "INSERT INTO subscriptions VALUES (?, ?, ?, ?) ON CONFLICT"
            " (contact_seq, topic_seq) DO UPDATE SET subscription ="
            " excluded.subscription",
            [(seq, tseq, sub, ts) for seq in batch.touched],
        )
