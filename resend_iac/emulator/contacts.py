"""Contacts: the contacts table and its property values, and the routes ``/contacts`` and
``/contacts/{id}`` (by id or by email). Behaviour and sources: docs/emulator.md."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import (
    SUBSCRIPTIONS,
    APIError,
    invalid,
    missing,
    new_id,
    not_found,
    now_text,
    valid_email,
)
from resend_iac.emulator.wire import (
    Response,
    RouteTable,
    json_body,
    json_list_response,
    json_response,
    opt_str,
    page_params,
)

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp

CONTACT_COLS = "id, email, first_name, last_name, unsubscribed, created_at"
# A list item serialised by SQLite itself (lists are the hot path: pages of 100, and
# unpaginated lists of 100k contacts).
CONTACT_JSON = (
    "json_object('id', {p}id, 'email', {p}email, 'first_name', {p}first_name,"
    " 'last_name', {p}last_name, 'created_at', {p}created_at, 'unsubscribed',"
    " json(CASE {p}unsubscribed WHEN 0 THEN 'false' ELSE 'true' END))"
)


class ContactsData(StoreCore):
    """The contacts and their property values."""

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
CREATE TABLE IF NOT EXISTS contact_values (
    contact_seq INTEGER NOT NULL,
    property_seq INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (contact_seq, property_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contact_values_property ON contact_values (property_seq);
CREATE TABLE IF NOT EXISTS deleted_unsubscribes (
    email_key TEXT PRIMARY KEY
) WITHOUT ROWID;
"""
    TABLES = ("contacts", "contact_values", "deleted_unsubscribes")

    def recall_unsubscribes(self, c: Any, first_seq: int) -> None:
        """Contacts created from ``first_seq`` on whose email was deleted while unsubscribed:
        unsubscribed again (benign: whether the real API remembers an unsubscribe across a
        deletion is unknown; hostile forgets it)."""
        if not self.hostile:
            c.execute(
                "UPDATE contacts SET unsubscribed = 1 WHERE seq >= ? AND unsubscribed = 0 AND email_key IN"
                " (SELECT email_key FROM deleted_unsubscribes)",
                (first_seq,),
            )

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
                self.recall_unsubscribes(c, seq)
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
            if row[5] and not self.hostile:  # unknown: benign remembers the unsubscribe (#23)
                c.execute("INSERT OR IGNORE INTO deleted_unsubscribes VALUES (?)", (self.email_key(row[2]),))
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


# -- request fields ----------------------------------------------------------------------


def parse_properties(body: dict) -> dict[str, Any]:
    """``properties`` absent: ``{}``; present it must be an object (``null`` too is a 422:
    no source says the API takes it; a value of ``null`` inside removes that key)."""
    if "properties" not in body:
        return {}
    props = body["properties"]
    if not isinstance(props, dict):
        raise invalid("The `properties` field must be an object of property keys to values.")
    for key, value in props.items():  # booleans only fit boolean properties (made by imports)
        if value is not None and not isinstance(value, (str, int, float)):
            raise invalid(f"The value of property `{key}` must be a string or a number.")
    return props


def parse_contact_fields(body: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("first_name", "last_name"):
        if name in body:
            fields[name] = opt_str(body, name)
    if "unsubscribed" in body:
        if not isinstance(body["unsubscribed"], bool):
            raise invalid("The `unsubscribed` field must be a boolean.")
        fields["unsubscribed"] = body["unsubscribed"]
    return fields


def parse_segment_refs(value: Any) -> list[str]:
    """``[{"id": …}]`` (what the SDKs send) or ``["…"]`` (what the OAS says)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("The `segments` field must be an array.")
    out = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("id")
        if not isinstance(item, str) or not item:
            raise invalid('Each item of `segments` must be a segment id or {"id": …}.')
        out.append(item)
    return out


def parse_topic_refs(value: Any, field: str = "topics") -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(f"The `{field}` field must be an array.")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid(f"Each item of `{field}` must be an object with `id` and `subscription`.")
        tid, sub = item.get("id"), item.get("subscription")
        if not isinstance(tid, str) or not tid:
            raise missing("id")
        if sub not in SUBSCRIPTIONS:
            raise invalid("The `subscription` must be `opt_in` or `opt_out`.")
        out.append((tid, sub))
    return out


# -- routes ------------------------------------------------------------------------------


async def create_contact(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request)
    if body.get("email") is None:
        raise missing("email")
    email = body["email"]
    if not valid_email(email):
        raise invalid(
            "Invalid `email` field. The email address needs to follow the `email@example.com` format."
        )
    fields = parse_contact_fields(body)
    values = {k: v for k, v in parse_properties(body).items() if v is not None}
    segments = parse_segment_refs(body.get("segments"))
    if body.get("audience_id") is not None:  # deprecated: an audience is a segment
        segments += parse_segment_refs([body["audience_id"]])
    topics = parse_topic_refs(body.get("topics"))
    cid = app.store.create_contact(email, fields, values, segments, topics)
    return json_response({"object": "contact", "id": cid}, 201)


async def list_contacts(app: EmulatorApp, request: Request) -> Response:
    page = page_params(request)
    segment_id = request.query_params.get("segment_id") or None
    items, more = app.store.list_contacts_json(page, segment_id)
    return json_list_response(items, more)


async def get_contact(app: EmulatorApp, request: Request) -> Response:
    return json_response(app.store.get_contact(request.path_params["id"]))


async def update_contact(app: EmulatorApp, request: Request) -> Response:
    ref = request.path_params["id"]
    body = await json_body(request)
    fields = parse_contact_fields(body)
    if body.get("email") is not None:
        email = body["email"]
        if not valid_email(email):
            raise invalid(
                "Invalid `email` field. The email address needs to follow the `email@example.com` format."
            )
        if app.store.email_key(email) != app.store.email_key(ref):
            fields["email"] = email
    values = parse_properties(body)
    cid = app.store.update_contact(ref, fields, values)
    return json_response({"object": "contact", "id": cid})


async def delete_contact(app: EmulatorApp, request: Request) -> Response:
    """Recorded (resend-node, 2025-11-30): ``{object, contact: <the id>, deleted}``, the id
    even when deleted by email, nothing else. Unknown contact: the reference as passed."""
    ref = request.path_params["id"]
    cid = app.store.delete_contact(ref)
    if cid is None and app.store.hostile:  # unknown on the global path: the harmful reading
        raise APIError(404, "not_found", "Contact not found")
    return json_response({"object": "contact", "contact": cid or ref, "deleted": True})


ROUTES: RouteTable = [
    ("/contacts", {"POST": create_contact, "GET": list_contacts}),
    ("/contacts/{id}", {"GET": get_contact, "PATCH": update_contact, "DELETE": delete_contact}),
]
