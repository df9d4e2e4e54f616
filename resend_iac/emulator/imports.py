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

import asyncio
import itertools
import json
import queue
import threading
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import APIError, invalid, missing, new_id, not_found, now_text
from resend_iac.emulator.import_csv import prepare
from resend_iac.emulator.import_run import run
from resend_iac.emulator.wire import Response, json_response, list_body, newer_page, upload

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp

STATUSES = ("queued", "in_progress", "completed", "failed")
CSV_PART = 256 * 1024  # characters of an upload's CSV stored per transaction (Importer.submit)


class ImportsData(StoreCore):
    """The tables of imports (the Importer reads and writes them)."""

    SCHEMA = """
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
    TABLES = ("imports", "import_progress", "import_csv")


class Importer:
    """Queue + one daemon worker thread (started when there is work, ended when idle)."""

    COLS = "id, status, created_at, completed_at, total, created, updated, skipped, failed"

    def __init__(self, store: StoreCore) -> None:
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


# -- routes ------------------------------------------------------------------------------


async def _read_upload(scope: dict, body: bytes) -> tuple[bytes, dict[str, Any]]:
    """(the CSV ``file``'s bytes, the other import fields) of a multipart body read whole."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, receive).form(max_part_size=64 * 1024 * 1024)
    except Exception:
        raise invalid("The multipart body could not be parsed.") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise missing("file")
        data = await upload.read()
        fields = {k: form.get(k) for k in ("column_map", "on_conflict", "segments", "topics")}
    finally:
        await form.close()
    return data, fields


def _submit_upload(app: EmulatorApp, scope: dict, body: bytes) -> str:
    """Parse (starlette's multipart parser, on an event loop of this thread's own),
    check and queue an import; returns its id (raises APIError)."""
    data, fields = asyncio.run(_read_upload(scope, body))
    job = prepare(app.store, data, fields)
    return app.importer.submit(job)


@upload
async def create_import(app: EmulatorApp, request: Request) -> Response:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise invalid("The request must be `multipart/form-data` with a CSV `file` field.")
    # On the event loop only the body's chunks are gathered: parsing a 100,000-row upload,
    # checking it and storing it take tens of ms of CPU and I/O, which would hold up every
    # other request; a worker thread does them.
    try:
        body = await request.body()
    except APIError:  # 413: larger than the app's max_upload
        raise
    except Exception:  # as request.form() would (a client gone mid-body)
        raise invalid("The multipart body could not be parsed.") from None
    iid = await run_in_threadpool(_submit_upload, app, request.scope, body)
    return json_response({"object": "contact_import", "id": iid}, 201)


async def get_import(app: EmulatorApp, request: Request) -> Response:
    return json_response(app.importer.get(request.path_params["id"]))


async def list_imports(app: EmulatorApp, request: Request) -> Response:
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise invalid("The `status` must be one of queued, in_progress, completed, failed.")
    data, more = app.importer.list(newer_page(app, request), status)
    return json_response(list_body(data, more))


ROUTES = [
    ("/contacts/imports", {"POST": create_import, "GET": list_imports}),
    ("/contacts/imports/{id}", {"GET": get_import}),
]

__all__ = ["CSV_PART", "Importer", "ImportsData", "ROUTES", "STATUSES", "prepare", "run"]
