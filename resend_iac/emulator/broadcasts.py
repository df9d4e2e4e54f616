"""Broadcasts: the routes ``/broadcasts`` (create, list, get, update, remove, send, cancel,
duplicate, recipients, clicked links). Sending delivers nothing; it moves the status.

Sources (docs/emulator.md, "Broadcasts"): the OAS (shapes, required ``from``/``subject``/
``segment_id``, "remove ... in the draft status", "cancels a broadcast that is queued or
scheduled"), the official SDKs' types and the Node SDK's tests (``Broadcast not found``;
cancel of another status: 403 ``validation_error`` "Only queued or scheduled broadcasts can be
canceled"; ``Missing `from` field.``). What no source settles is tabled as unknown.

Status: ``draft`` until sent; ``send`` (or create with ``send: true``) fixes the moment it
goes out (now, or ``scheduled_at``: ISO 8601 or "in N minutes/hours/days"). Until that
moment it is ``scheduled``, then ``queued`` for one second, ``sending`` for one more, then
``sent`` (``sent_at`` = that moment + 2 s). Time is the wall clock plus the emulator's
``/_emulator/advance`` seconds. ``cancel`` (scheduled or queued) makes it ``canceled``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import APIError, invalid, missing, new_id, not_found, now_text
from resend_iac.emulator.wire import (
    Response,
    RouteTable,
    json_body,
    json_response,
    list_body,
    newer_page,
    page_params,
)

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp

QUEUED_SECONDS = 1.0  # a broadcast going out is "queued" this long, then "sending" as long
STATUSES = ("draft", "scheduled", "queued", "sending", "sent", "canceled")
RECIPIENT_TYPES = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
    "suppressed",
)
BOUNCE_TYPES = ("permanent", "transient", "undetermined")
# "Acme <news@acme.com>" or "news@acme.com"
FROM_RE = re.compile(
    r"^(?:[^<>\r\n]{0,200}<\s*[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+\s*>|[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)$"
)
RELATIVE_RE = re.compile(
    r"^in\s+(\d{1,6})\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$", re.I
)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TEXT_FIELDS = ("name", "subject", "preview_text", "html", "text")
# a row: 0 id, 1 name, 2 segment_id, 3 topic_id, 4 sender, 5 subject, 6 reply_to, 7 preview_text,
# 8 html, 9 text, 10 status, 11 send_at, 12 scheduled, 13 created_at
COLS = (
    "id, name, segment_id, topic_id, sender, subject, reply_to, preview_text, html, text,"
    " status, send_at, scheduled, created_at"
)


def pg_time(t: float) -> str:
    """Epoch seconds as the API writes times: ``2026-12-03 09:00:00.123+00``."""
    d = datetime.fromtimestamp(t, UTC)
    frac = f"{d.microsecond:06d}"[:3].rstrip("0")
    return d.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + "+00"


def parse_when(value: Any, now: float) -> float:
    """``scheduled_at`` -> epoch seconds: ISO 8601 (a time zone required: Z or +hh:mm), or
    ``in N minutes`` (also s/sec, m/min, h/hr/hours, d/days) from ``now``."""
    if not isinstance(value, str) or not value.strip():
        raise invalid("The `scheduled_at` field must be a date in ISO 8601 format or natural language.")
    text = value.strip()
    m = RELATIVE_RE.match(text)
    if m:
        return now + int(m.group(1)) * UNIT_SECONDS[m.group(2)[0].lower()]
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        raise invalid(
            "The `scheduled_at` field must be a date in ISO 8601 format with a time zone "
            "(2026-12-03T09:00:00Z) or natural language (in 1 hour)."
        )
    return t.timestamp()


class BroadcastsData(StoreCore):
    """The broadcasts. ``send_at`` (epoch seconds of the emulator's clock) is when one goes
    out; the status shown is derived from it (``status`` stores draft, out or canceled)."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS broadcasts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT,
    segment_id TEXT,
    topic_id TEXT,
    sender TEXT,
    subject TEXT,
    reply_to TEXT,
    preview_text TEXT,
    html TEXT,
    text TEXT,
    status TEXT NOT NULL,
    send_at REAL,
    scheduled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
"""
    TABLES = ("broadcasts",)

    def wall(self) -> float:
        """Now, for broadcasts: the wall clock plus the seconds of ``/_emulator/advance``."""
        return time.time() + self.clock_offset

    def _shown(self, row: tuple, now: float) -> tuple[str, str | None, str | None]:
        """(status, scheduled_at, sent_at) of a row at ``now``."""
        stored, send_at = row[10], row[11]
        if stored != "out" or send_at is None:
            return stored, (pg_time(send_at) if stored == "canceled" and send_at else None), None
        scheduled_at = pg_time(send_at) if row[12] else None  # scheduled, not sent at once
        if now < send_at:
            return "scheduled", scheduled_at, None
        if now < send_at + QUEUED_SECONDS:
            return "queued", scheduled_at, None
        if now < send_at + 2 * QUEUED_SECONDS:
            return "sending", scheduled_at, None
        return "sent", scheduled_at, pg_time(send_at + 2 * QUEUED_SECONDS)

    def _row(self, bid: str) -> tuple:
        row = self.read_one(f"SELECT {COLS} FROM broadcasts WHERE id = ?", (bid,))
        if row is None:
            raise not_found("Broadcast")
        return row

    def _item(self, row: tuple, now: float, full: bool) -> dict[str, Any]:
        status, scheduled_at, sent_at = self._shown(row, now)
        item: dict[str, Any] = {"id": row[0], "name": row[1], "audience_id": row[2], "segment_id": row[2]}
        if full:
            item = {"object": "broadcast", **item}
            item.update(
                {
                    "from": row[4],
                    "subject": row[5],
                    "reply_to": json.loads(row[6]) if row[6] else None,
                    "preview_text": row[7],
                }
            )
        item.update(
            {"status": status, "created_at": row[13], "scheduled_at": scheduled_at, "sent_at": sent_at}
        )
        if full:
            item.update({"html": row[8], "text": row[9]})
        item["topic_id"] = row[3]
        return item

    def get_broadcast(self, bid: str) -> dict[str, Any]:
        return self._item(self._row(bid), self.wall(), True)

    def status_of(self, bid: str) -> str:
        return self._shown(self._row(bid), self.wall())[0]

    def list_broadcasts(self, page: dict) -> tuple[list[dict], bool]:
        rows, more = self._page("broadcasts", COLS, "", [], page)
        now = self.wall()
        items = [self._item(r, now, False) for r in rows]
        if self.hostile:  # the Node SDK's test list items have no topic_id (the OAS's have)
            for item in items:
                del item["topic_id"]
        return items, more

    def broadcast_rows(self, bid: str | None = None) -> list[dict[str, Any]]:
        """Every broadcast (or the one ``bid``) for the web view, newest first, with its
        segment's and topic's names and its status now."""
        rows = self.read(
            f"SELECT {', '.join('b.' + c.strip() for c in COLS.split(','))}, s.name, t.name FROM broadcasts b"
            " LEFT JOIN segments s ON s.id = b.segment_id LEFT JOIN topics t ON t.id = b.topic_id"
            + (" WHERE b.id = ?" if bid is not None else "")
            + " ORDER BY b.seq DESC",
            [bid] if bid is not None else [],
        )
        now = self.wall()
        return [{**self._item(r[:14], now, True), "segment": r[14], "topic": r[15]} for r in rows]

    def _check_refs(self, c: Any, fields: dict[str, Any]) -> None:
        if fields.get("segment_id") is not None:
            if c.execute("SELECT 1 FROM segments WHERE id = ?", (fields["segment_id"],)).fetchone() is None:
                raise not_found("Segment")
        if fields.get("topic_id") is not None:
            if c.execute("SELECT 1 FROM topics WHERE id = ?", (fields["topic_id"],)).fetchone() is None:
                raise not_found("Topic")

    def create_broadcast(self, fields: dict[str, Any], send_at: float | None, scheduled: bool) -> str:
        with self.write() as c:
            self._check_refs(c, fields)
            bid = new_id()
            c.execute(
                "INSERT INTO broadcasts (id, name, segment_id, topic_id, sender, subject, reply_to,"
                " preview_text, html, text, status, send_at, scheduled, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bid,
                    fields.get("name"),
                    fields.get("segment_id"),
                    fields.get("topic_id"),
                    fields.get("from"),
                    fields.get("subject"),
                    json.dumps(fields["reply_to"]) if fields.get("reply_to") is not None else None,
                    fields.get("preview_text"),
                    fields.get("html"),
                    fields.get("text"),
                    "draft" if send_at is None else "out",
                    send_at,
                    int(scheduled),
                    now_text(),
                ),
            )
            return bid

    def _require(self, bid: str, allowed: tuple[str, ...], message: str) -> None:
        if self.status_of(bid) not in allowed:
            raise APIError(403, "validation_error", message)

    def update_broadcast(self, bid: str, fields: dict[str, Any]) -> None:
        with self.write() as c:
            self._require(bid, ("draft",), "Only draft broadcasts can be updated")
            self._check_refs(c, fields)
            sets, args = [], []
            for name, value in fields.items():
                column = {"from": "sender"}.get(name, name)
                sets.append(f"{column} = ?")
                args.append(json.dumps(value) if name == "reply_to" and value is not None else value)
            if sets:
                c.execute(f"UPDATE broadcasts SET {', '.join(sets)} WHERE id = ?", (*args, bid))

    def remove_broadcast(self, bid: str) -> None:
        with self.write() as c:
            self._require(bid, ("draft",), "Only draft broadcasts can be removed")
            c.execute("DELETE FROM broadcasts WHERE id = ?", (bid,))

    def send_broadcast(self, bid: str, send_at: float, scheduled: bool) -> None:
        with self.write() as c:
            row = self._row(bid)
            self._require(bid, ("draft",), "Only draft broadcasts can be sent")
            if not row[4] or not row[5] or not row[2]:
                raise invalid("A broadcast needs `from`, `subject` and `segment_id` before it is sent.")
            c.execute(
                "UPDATE broadcasts SET status = 'out', send_at = ?, scheduled = ? WHERE id = ?",
                (send_at, int(scheduled), bid),
            )

    def cancel_broadcast(self, bid: str) -> None:
        with self.write() as c:
            self._require(bid, ("scheduled", "queued"), "Only queued or scheduled broadcasts can be canceled")
            c.execute("UPDATE broadcasts SET status = 'canceled' WHERE id = ?", (bid,))

    def duplicate_broadcast(self, bid: str) -> str:
        row = self._row(bid)
        fields = {
            "name": row[1],
            "segment_id": row[2],
            "topic_id": row[3],
            "from": row[4],
            "subject": row[5],
            "reply_to": json.loads(row[6]) if row[6] else None,
            "preview_text": row[7],
            "html": row[8],
            "text": row[9],
        }
        return self.create_broadcast(fields, None, False)

    def seed_broadcast(self, fields: dict[str, Any], status: str, send_at: float | None) -> str:
        """A broadcast of seed data, in ``status`` (draft, scheduled, sent or canceled) at
        once: a sent one went out just now (``sent_at`` = now)."""
        now = self.wall()
        if status == "sent":
            return self.create_broadcast(fields, now - 2 * QUEUED_SECONDS, False)
        if status == "scheduled":
            return self.create_broadcast(fields, send_at if send_at is not None else now + 86400, True)
        bid = self.create_broadcast(fields, None, False)
        if status == "canceled":
            with self.write() as c:
                c.execute(
                    "UPDATE broadcasts SET status = 'canceled', send_at = ? WHERE id = ?", (send_at, bid)
                )
        return bid


# -- request parsing ------------------------------------------------------------------------


def _fields(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """The broadcast fields of a create or update body (unknown keys are ignored: the Python
    SDK sends ``broadcast_id`` in the body)."""
    out: dict[str, Any] = {}
    segment = body.get("segment_id") if body.get("segment_id") is not None else body.get("audience_id")
    if segment is not None or (not create and ("segment_id" in body or "audience_id" in body)):
        if not isinstance(segment, str) or not segment:
            raise invalid("The `segment_id` field must be a segment id.")
        out["segment_id"] = segment
    if "topic_id" in body:
        if body["topic_id"] is not None and (not isinstance(body["topic_id"], str) or not body["topic_id"]):
            raise invalid("The `topic_id` field must be a topic id or null.")
        out["topic_id"] = body["topic_id"]
    if body.get("from") is not None:
        if not isinstance(body["from"], str) or not FROM_RE.match(body["from"].strip()):
            raise APIError(
                422,
                "invalid_parameter",
                "Invalid `from` field. The email address needs to follow the `email@example.com` or "
                "`Name <email@example.com>` format",
            )
        out["from"] = body["from"].strip()
    for name in TEXT_FIELDS:
        if body.get(name) is not None:
            if not isinstance(body[name], str):
                raise invalid(f"The `{name}` field must be a string.")
            out[name] = body[name]
    if body.get("reply_to") is not None:
        reply = body["reply_to"]
        reply = [reply] if isinstance(reply, str) else reply
        if not isinstance(reply, list) or not all(isinstance(r, str) for r in reply):
            raise invalid("The `reply_to` field must be an email address or an array of them.")
        out["reply_to"] = reply
    if create:
        for name in ("from", "subject"):
            if name not in out:
                raise missing(name)
        if "segment_id" not in out:
            raise missing("segment_id")
    return out


def _send_at(app: EmulatorApp, body: dict[str, Any]) -> tuple[float, bool]:
    """(when it goes out, scheduled?) of a send: now without ``scheduled_at``; a time already
    past also goes out now (unknown: see docs/emulator.md)."""
    now = app.store.wall()
    if body.get("scheduled_at") is None:
        return now, False
    when = parse_when(body["scheduled_at"], now)
    return (when, True) if when > now else (now, False)


# -- routes ------------------------------------------------------------------------------


async def create_broadcast(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request)
    fields = _fields(body, create=True)
    send = body.get("send")
    if send is not None and not isinstance(send, bool):
        raise invalid("The `send` field must be a boolean.")
    if body.get("scheduled_at") is not None and not send:
        raise invalid("The `scheduled_at` field can only be used if `send` is true.")
    send_at, scheduled = _send_at(app, body) if send else (None, False)
    bid = app.store.create_broadcast(fields, send_at, scheduled)
    return json_response({"id": bid, "object": "broadcast"}, 201)


async def list_broadcasts(app: EmulatorApp, request: Request) -> Response:
    page = newer_page(app, request) if app.store.hostile else page_params(request)
    data, more = app.store.list_broadcasts(page)
    return json_response(list_body(data, more))


async def get_broadcast(app: EmulatorApp, request: Request) -> Response:
    return json_response(app.store.get_broadcast(request.path_params["id"]))


async def update_broadcast(app: EmulatorApp, request: Request) -> Response:
    bid = request.path_params["id"]
    body = await json_body(request)
    app.store.update_broadcast(bid, _fields(body, create=False))
    return json_response({"id": bid, "object": "broadcast"})


async def remove_broadcast(app: EmulatorApp, request: Request) -> Response:
    bid = request.path_params["id"]
    app.store.remove_broadcast(bid)
    return json_response({"object": "broadcast", "id": bid, "deleted": True})


async def send_broadcast(app: EmulatorApp, request: Request) -> Response:
    bid = request.path_params["id"]
    body = await json_body(request)
    app.store.get_broadcast(bid)  # 404 before the body's problems
    send_at, scheduled = _send_at(app, body)
    app.store.send_broadcast(bid, send_at, scheduled)
    return json_response({"id": bid})


async def cancel_broadcast(app: EmulatorApp, request: Request) -> Response:
    bid = request.path_params["id"]
    app.store.cancel_broadcast(bid)
    return json_response({"object": "broadcast", "id": bid})


async def duplicate_broadcast(app: EmulatorApp, request: Request) -> Response:
    bid = app.store.duplicate_broadcast(request.path_params["id"])
    return json_response({"object": "broadcast", "id": bid}, 201)


async def list_recipients(app: EmulatorApp, request: Request) -> Response:
    """Nothing is delivered, so no broadcast has recipients of any event type."""
    app.store.get_broadcast(request.path_params["id"])
    q = request.query_params
    if q.get("type") is None:
        raise missing("type")
    if q["type"] not in RECIPIENT_TYPES:
        raise invalid(f"The `type` must be one of {', '.join(RECIPIENT_TYPES)}.")
    if q.get("bounce_type") is not None:
        if q["type"] != "bounced":
            raise invalid("The `bounce_type` parameter is only valid when `type` is `bounced`.")
        if q["bounce_type"] not in BOUNCE_TYPES:
            raise invalid(f"The `bounce_type` must be one of {', '.join(BOUNCE_TYPES)}.")
    page_params(request)
    return json_response(list_body([], False))


async def list_clicked_links(app: EmulatorApp, request: Request) -> Response:
    app.store.get_broadcast(request.path_params["id"])
    page_params(request)
    return json_response(list_body([], False))


ROUTES: RouteTable = [
    ("/broadcasts", {"POST": create_broadcast, "GET": list_broadcasts}),
    ("/broadcasts/{id}", {"GET": get_broadcast, "PATCH": update_broadcast, "DELETE": remove_broadcast}),
    ("/broadcasts/{id}/send", {"POST": send_broadcast}),
    ("/broadcasts/{id}/cancel", {"POST": cancel_broadcast}),
    ("/broadcasts/{id}/duplicate", {"POST": duplicate_broadcast}),
    ("/broadcasts/{id}/recipients", {"GET": list_recipients}),
    ("/broadcasts/{id}/clicked-links", {"GET": list_clicked_links}),
]
