"""Contact imports (``POST /contacts/imports``): CSV in, processed asynchronously.

``prepare`` checks a request synchronously (CSV readable, a header with an email column,
``column_map`` matching columns and declared properties, segments and topics existing) and
answers 422 for what is wrong (the app runs the parsing, ``prepare`` and ``submit`` on a
worker thread, off the event loop). The ``Importer`` stores the job as ``queued`` (its CSV
in table ``import_csv``, in parts of ``CSV_PART`` characters) and a worker
thread runs it: ``in_progress``, then the rows in chunks of ``CHUNK_ROWS``, each in one transaction with
the counts so far, the last with the final ``completed`` status (other requests wait for
one chunk at most; queued and in-progress jobs are run again when the store is opened
next, an in-progress one from its last committed chunk).

``column_map`` forms accepted (the notes say accept every form):
- the OAS's: ``{"email": "Email", "first_name": "First Name", "last_name": …,
  "unsubscribed": …, "properties": {"plan": {"column": "Plan", "type": "string"}}}``
  (a property may also be given as ``"plan": "Plan"``, inside or outside ``properties``);
- a plain ``{csv_column: field_or_property_key}``;
- none: columns named exactly like a field (``email``, ``first_name``, …: case-sensitive,
  an ``Email`` header is a 422, as the official CLI's docs report) or a property key.

A ``column_map`` naming a property that does not exist creates it (changelog "CSV contacts
import", 2026-06-24), with the type it gives (``string``, ``number`` or ``boolean``;
default ``string``).

Rows: a bad email or a value that does not fit its property's type makes the row
``failed``; the import still completes. Existing contacts (the store's email key) are
left alone on ``skip`` and upserted on ``upsert``. Without ``on_conflict`` the benign
profile skips (OAS, Python SDK) and the hostile one upserts (official CLI, MCP server).
An upsert: benign updates the non-empty mapped cells; hostile resets every field and
property the row does not give (no column, or an empty cell) to its default, so an
``unsubscribed`` contact whose CSV lacks the column is resubscribed. Segments and topics
apply to created and upserted contacts; whether they reach skipped ones is unknown: benign
no, hostile yes (so an import's ``opt_in`` would undo an existing contact's opt-out).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from resend_iac.emulator.store import (
    CONTACT_FIELDS,
    IMPORT_PROPERTY_TYPES,
    PROPERTY_KEY_RE,
    APIError,
    Store,
    invalid,
    missing,
    new_id,
    not_found,
    now_text,
    valid_email,
)

STATUSES = ("queued", "in_progress", "completed", "failed")
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity


def _json_field(fields: dict, name: str, default: Any) -> Any:
    raw = fields.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        raise invalid(f"The `{name}` field must be a JSON string.")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        raise invalid(f"The `{name}` field is not valid JSON.") from None


def _resolve_columns(header: list[str], column_map: Any, props: dict[str, str]) -> dict:
    """``{"fields": {field: col_index}, "properties": {key: col_index},
    "new_properties": {key: type}}`` (properties the import creates)."""
    index = {name: i for i, name in enumerate(header)}
    lower = {name.strip().lower(): i for i, name in enumerate(header)}
    fields: dict[str, int] = {}
    properties: dict[str, int] = {}
    new_properties: dict[str, str] = {}

    def column(name: Any, where: str) -> int:
        if not isinstance(name, str) or name not in index:
            raise invalid(
                f"column_map: {where} names the column `{name}`, which the CSV "
                f"header does not have (columns: {', '.join(header)})."
            )
        return index[name]

    def prop(key: str, col: int, ptype: Any = None) -> None:
        if key not in props:  # created by the import
            if not PROPERTY_KEY_RE.match(key) or key in CONTACT_FIELDS:
                raise invalid(f"column_map: `{key}` is not a valid contact property key.")
            ptype = ptype or "string"
            if ptype not in IMPORT_PROPERTY_TYPES:
                raise invalid(
                    f"column_map: the type of `{key}` must be one of {', '.join(IMPORT_PROPERTY_TYPES)}."
                )
            new_properties[key] = ptype
        properties[key] = col

    if column_map in (None, {}):  # header names match case-sensitively (resend-cli docs)
        for name, i in index.items():
            if name in CONTACT_FIELDS:
                fields[name] = i
        for key in props:
            if key in index and key not in CONTACT_FIELDS:
                properties[key] = index[key]
    elif not isinstance(column_map, dict):
        raise invalid("The `column_map` field must be a JSON object.")
    else:
        for key, value in column_map.items():
            if key == "properties" and isinstance(value, dict):
                for pkey, spec in value.items():
                    col = spec.get("column") if isinstance(spec, dict) else spec
                    ptype = spec.get("type") if isinstance(spec, dict) else None
                    prop(pkey, column(col, f"properties.{pkey}"), ptype)
            elif isinstance(value, dict):  # {"plan": {"column": "Plan", "type": …}}
                prop(key, column(value.get("column"), key), value.get("type"))
            elif key in CONTACT_FIELDS:  # the OAS form {"email": "Email"} wins
                fields[key] = column(value, f"`{key}`")
            elif key in props and value in index:
                prop(key, index[value])
            elif key in index and isinstance(value, str) and value.lower() in CONTACT_FIELDS:
                fields[value.lower()] = index[key]
            elif key in index and isinstance(value, str):
                prop(value, index[key])
            else:
                column(value, f"`{key}`")
        if "email" not in fields and "email" in lower:
            fields["email"] = lower["email"]
    if "email" not in fields:
        raise invalid(
            "The CSV needs an email column: name a column `email` or map one with "
            '`column_map` (e.g. {"email": "Email"}).'
        )
    return {"fields": fields, "properties": properties, "new_properties": new_properties}


def prepare(store: Store, data: bytes, form: dict[str, Any]) -> dict[str, Any]:
    """Validate an import request; returns the job to run (raises APIError)."""
    if not data or not data.strip():
        raise invalid("The CSV `file` is empty.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("The CSV `file` must be UTF-8 text.") from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
    except csv.Error as exc:
        raise invalid(f"The CSV `file` could not be read: {exc}.") from None
    if not header or not any(h.strip() for h in header):
        raise invalid("The CSV `file` has no header row.")
    header = [h.strip() for h in header]
    on_conflict = form.get("on_conflict") or ("upsert" if store.hostile else "skip")
    if on_conflict not in ("upsert", "skip"):
        raise invalid("The `on_conflict` field must be `upsert` or `skip`.")
    column_map = _json_field(form, "column_map", None)
    segments = _json_field(form, "segments", [])
    topics = _json_field(form, "topics", [])
    if not isinstance(segments, list) or not isinstance(topics, list):
        raise invalid("The `segments` and `topics` fields must be JSON arrays.")
    seg_ids = []
    for item in segments:
        sid = item.get("id") if isinstance(item, dict) else item
        if not isinstance(sid, str):
            raise invalid('Each item of `segments` must be {"id": …}.')
        seg_ids.append(sid)
    top = []
    for item in topics:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise missing("id")
        if item.get("subscription") not in ("opt_in", "opt_out"):
            raise invalid("The `subscription` must be `opt_in` or `opt_out`.")
        top.append((item["id"], item["subscription"]))
    with store.lock:
        c = store.conn
        props = {k: t for k, t in c.execute("SELECT key, type FROM properties")}
        for sid in seg_ids:
            if c.execute("SELECT 1 FROM segments WHERE id = ?", (sid,)).fetchone() is None:
                raise not_found("Segment")
        for tid, _ in top:
            if c.execute("SELECT 1 FROM topics WHERE id = ?", (tid,)).fetchone() is None:
                raise not_found("Topic")
    columns = _resolve_columns(header, column_map, props)
    return {"csv": text, "columns": columns, "on_conflict": on_conflict, "segments": seg_ids, "topics": top}


def _cell(row: list[str], i: int) -> str:
    return row[i].strip() if i < len(row) else ""


def _convert(ptype: str, raw: str) -> Any:
    if ptype == "string":
        return raw
    if ptype == "boolean":
        flag = raw.lower()
        if flag not in TRUE and flag not in FALSE:
            raise ValueError(raw)
        return flag in TRUE
    try:
        return int(raw)
    except ValueError:
        value = float(raw)  # ValueError for non-numbers: the row fails
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(raw) from None
        return value


def _parse_rows(
    job: dict[str, Any], props: dict[str, tuple[int, str]], counts: dict[str, int]
) -> Iterator[tuple[str, dict[str, Any], dict[int, Any]]]:
    """Valid rows as (email, field changes, {property_seq: value}), as they are parsed;
    bad rows counted."""
    fields = job["columns"]["fields"]
    prop_cols = [
        (props[k][0], props[k][1], col) for k, col in job["columns"]["properties"].items() if k in props
    ]
    email_col = fields["email"]
    simple = [(name, fields[name]) for name in ("first_name", "last_name") if name in fields]
    unsub_col = fields.get("unsubscribed")
    reader = csv.reader(io.StringIO(job["csv"], newline=""))
    next(reader, None)
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        counts["total"] += 1
        email = _cell(row, email_col)
        if not valid_email(email):
            counts["failed"] += 1
            continue
        try:
            values = {}
            for pseq, ptype, col in prop_cols:
                raw = _cell(row, col)
                if raw != "":
                    values[pseq] = _convert(ptype, raw)
            changes: dict[str, Any] = {}
            for name, col in simple:
                raw = _cell(row, col)
                if raw != "":
                    changes[name] = raw
            if unsub_col is not None:
                flag = _cell(row, unsub_col).lower()
                if flag:
                    if flag not in TRUE and flag not in FALSE:
                        raise ValueError(flag)
                    changes["unsubscribed"] = int(flag in TRUE)
        except ValueError:
            counts["failed"] += 1
            continue
        yield email, changes, values


CHUNK_ROWS = 250  # rows applied per transaction (the store lock is free between chunks): ~5 ms held
PAUSE = 0.001  # seconds between chunks
CSV_PART = 256 * 1024  # characters of an upload's CSV stored per transaction (Importer.submit)


def run(store: Store, import_id: str, job: dict[str, Any]) -> None:
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
    rows = iter(_parse_rows(job, props, counts))
    # Resumed after a kill: the committed chunks' rows are done, their counts stored.
    for _ in itertools.islice(rows, sum(done)):
        pass
    counts["created"], counts["updated"], counts["skipped"] = done
    ts = now_text()
    chunk = list(itertools.islice(rows, CHUNK_ROWS))
    with _Checkpointer(store) as checkpointer:
        _run_chunks(store, import_id, job, (upsert, reset), counts, ts, rows, chunk, checkpointer)


def _run_chunks(
    store: Store,
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

    def __init__(self, store: Store) -> None:
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
    store: Store,
    c: Any,
    rows: list,
    mode: tuple[bool, bool],
    counts: dict[str, int],
    seg_seqs: list[int],
    top_seqs: list[tuple[int, str]],
    ts: str,
    seen: _Seen,
) -> None:
    """One chunk of parsed rows, inside the caller's transaction (see ``_run_chunks``)."""
    upsert, reset = mode
    keys = list({store.email_key(email) for email, _, _ in rows})
    known: dict[str, int] = {}
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        known.update(
            c.execute(
                f"SELECT email_key, seq FROM contacts WHERE email_key IN ({','.join('?' * len(part))})", part
            ).fetchall()
        )
    last = c.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name ="
        " 'contacts'), 0), coalesce((SELECT max(seq) FROM contacts), 0))"
    ).fetchone()[0]
    new: dict[str, list] = {}  # email_key -> [seq, id, email, first, last, unsub, ts]
    updates: list[tuple] = []
    resets: list[tuple] = []
    touched: list[int] = []
    values: list[tuple] = []
    for email, changes, vals in rows:
        key = store.email_key(email)
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
                updates.append(
                    (changes.get("first_name"), changes.get("last_name"), changes.get("unsubscribed"), seq)
                )
            counts["updated"] += 1
        elif key in known:
            if not upsert:
                counts["skipped"] += 1
                if store.hostile:  # unknown: the import's segments/topics reach it anyway
                    touched.append(known[key])
                continue
            seq = known[key]
            if reset:
                resets.append(
                    (changes.get("first_name"), changes.get("last_name"), changes.get("unsubscribed", 0), seq)
                )
            elif changes:
                updates.append(
                    (changes.get("first_name"), changes.get("last_name"), changes.get("unsubscribed"), seq)
                )
            counts["updated"] += 1
        else:
            last += 1
            seq = last
            new[key] = [
                seq,
                new_id(),
                email,
                changes.get("first_name"),
                changes.get("last_name"),
                changes.get("unsubscribed", 0),
                ts,
            ]
            counts["created"] += 1
        touched.append(seq)
        values.extend((seq, p, json.dumps(v)) for p, v in vals.items())
    c.executemany(
        "INSERT INTO contacts (seq, id, email, first_name, last_name, unsubscribed,"
        " created_at, email_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*rec, key) for key, rec in new.items()],
    )
    c.executemany("UPDATE contacts SET first_name = ?, last_name = ?, unsubscribed = ? WHERE seq = ?", resets)
    c.executemany(
        "DELETE FROM contact_values WHERE contact_seq = ?",
        [(r[3],) for r in resets if r[3] not in seen.reset],
    )
    c.executemany(
        "UPDATE contacts SET first_name = coalesce(?, first_name), last_name ="
        " coalesce(?, last_name), unsubscribed = coalesce(?, unsubscribed)"
        " WHERE seq = ?",
        updates,
    )
    c.executemany("INSERT OR REPLACE INTO contact_values VALUES (?, ?, ?)", values)
    for sseq in seg_seqs:
        c.executemany(
            "INSERT OR IGNORE INTO memberships VALUES (?, ?, ?)", [(sseq, seq, ts) for seq in touched]
        )
    for tseq, sub in top_seqs:
        c.executemany(
            "INSERT INTO subscriptions VALUES (?, ?, ?, ?) ON CONFLICT"
            " (contact_seq, topic_seq) DO UPDATE SET subscription ="
            " excluded.subscription",
            [(seq, tseq, sub, ts) for seq in touched],
        )
    store.touch(touched)
    seen.created.update((key, rec[0]) for key, rec in new.items())
    seen.reset.update(r[3] for r in resets)


class Importer:
    """Queue + one daemon worker thread (started when there is work, ended when idle)."""

    COLS = "id, status, created_at, completed_at, total, created, updated, skipped, failed"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue: queue.Queue[str] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.start_lock = threading.Lock()

    def _ensure_worker(self) -> None:
        with self.start_lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._work, name="emulator-imports", daemon=True)
                self.thread.start()

    def submit(self, job: dict[str, Any]) -> str:
        """Store a job (``prepare``'s) as ``queued`` and have it run; returns its id.

        The CSV goes to table ``import_csv`` in parts of ``CSV_PART`` characters, one short
        transaction each (a 100,000-row CSV in one would hold the store lock for tens of ms,
        and kept in the imports row it would be rewritten by every update of that row); the
        imports row, with the rest of the job, comes last, so a job is never seen half
        stored. A reset meanwhile (some parts gone) drops the upload, as if the reset came
        after it."""
        iid = new_id()
        text = job["csv"]
        parts = range(0, len(text), CSV_PART)
        for part, start in enumerate(parts):
            with self.store.write() as c:
                c.execute(
                    "INSERT INTO import_csv (import_id, part, text) VALUES (?, ?, ?)",
                    (iid, part, text[start : start + CSV_PART]),
                )
        rest = {k: v for k, v in job.items() if k != "csv"}
        with self.store.write() as c:
            stored = c.execute("SELECT count(*) FROM import_csv WHERE import_id = ?", (iid,)).fetchone()[0]
            if stored != len(parts):  # reset meanwhile
                c.execute("DELETE FROM import_csv WHERE import_id = ?", (iid,))
                return iid
            c.execute(
                "INSERT INTO imports (id, status, created_at, job) VALUES (?, 'queued', ?, ?)",
                (iid, now_text(), json.dumps(rest)),
            )
        self.queue.put(iid)
        self._ensure_worker()
        return iid

    def _load(self, iid: str) -> dict[str, Any] | None:
        """The job of a queued import, now ``in_progress`` (None: gone). Its CSV is read a
        part at a time, each a short hold of the store lock."""
        with self.store.write() as c:
            row = c.execute("SELECT job FROM imports WHERE id = ?", (iid,)).fetchone()
            if row is None or row[0] is None:
                return None
            c.execute("UPDATE imports SET status = 'in_progress' WHERE id = ?", (iid,))
        job = json.loads(row[0])
        if "csv" not in job:  # a job stored by an older emulator holds its CSV
            parts = []
            for part in itertools.count():
                got = self.store.read_one(
                    "SELECT text FROM import_csv WHERE import_id = ? AND part = ?", (iid, part)
                )
                if got is None:
                    break
                parts.append(got[0])
            job["csv"] = "".join(parts)
        return job

    def resume(self) -> None:
        """Re-run imports a previous server left queued or in progress."""
        with self.store.write() as c:  # the parts of uploads a killed server left unfinished
            c.execute("DELETE FROM import_csv WHERE import_id NOT IN (SELECT id FROM imports)")
        rows = self.store.read(
            "SELECT id FROM imports WHERE status IN ('queued', 'in_progress') ORDER BY seq"
        )
        for (iid,) in rows:
            self.queue.put(iid)
        if rows:
            self._ensure_worker()

    def clear(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return

    def _work(self) -> None:
        while True:
            try:
                iid = self.queue.get(timeout=2)
            except queue.Empty:  # idle: end the thread (many in-process apps in tests)
                with self.start_lock:
                    if self.queue.empty():
                        self.thread = None
                        return
                continue
            try:
                job = self._load(iid)
                if job is None:
                    continue
                run(self.store, iid, job)
            except Exception:
                try:
                    with self.store.write() as c:
                        c.execute(
                            "UPDATE imports SET status = 'failed', completed_at = ?, job = NULL WHERE id = ?",
                            (now_text(), iid),
                        )
                        c.execute("DELETE FROM import_csv WHERE import_id = ?", (iid,))
                except Exception:
                    pass

    def _dict(self, r: tuple) -> dict[str, Any]:
        return {
            "object": "contact_import",
            "id": r[0],
            "status": r[1],
            "created_at": r[2],
            "completed_at": r[3],
            "counts": {"total": r[4], "created": r[5], "updated": r[6], "skipped": r[7], "failed": r[8]},
        }

    def get(self, iid: str) -> dict[str, Any]:
        row = self.store.read_one(f"SELECT {self.COLS} FROM imports WHERE id = ?", (iid,))
        if row is None:
            raise not_found("Contact import")
        return self._dict(row)

    def list(self, page: dict, status: str | None) -> tuple[list[dict], bool]:
        where, args = ("status = ?", [status]) if status else ("", [])
        rows, more = self.store._page("imports", self.COLS, where, args, page)
        return [self._dict(r) for r in rows], more


__all__ = ["APIError", "Importer", "STATUSES", "prepare", "run"]
