"""Segments and their memberships: the routes ``/segments`` and ``/contacts/{id}/segments``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import invalid, new_id, not_found, now_text
from resend_iac.emulator.wire import (
    Response,
    RouteTable,
    json_body,
    json_list_response,
    json_response,
    list_body,
    newer_page,
    page_params,
    req_str,
)

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp


class SegmentsData(StoreCore):
    """The segments and which contacts are in them."""

    SCHEMA = """
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
"""
    TABLES = ("segments", "memberships")

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


# -- routes ------------------------------------------------------------------------------


async def create_segment(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request)
    name = req_str(body, "name")
    # The OAS lists an undocumented `filter` object (not stored: no source shows one back)
    if "filter" in body and not isinstance(body["filter"], dict):
        raise invalid("The `filter` field must be an object.")
    sid = app.store.create_segment(name)
    return json_response({"object": "segment", "id": sid, "name": name}, 201)


async def list_segments(app: EmulatorApp, request: Request) -> Response:
    data, more = app.store.list_segments(page_params(request))
    return json_response(list_body(data, more))


async def get_segment(app: EmulatorApp, request: Request) -> Response:
    return json_response(app.store.get_segment(request.path_params["id"]))


async def update_segment(app: EmulatorApp, request: Request) -> Response:
    sid = request.path_params["id"]
    body = await json_body(request)
    name = req_str(body, "name")
    app.store.rename_segment(sid, name)
    return json_response({"object": "segment", "id": sid})


async def delete_segment(app: EmulatorApp, request: Request) -> Response:
    sid = request.path_params["id"]
    app.store.delete_segment(sid)
    return json_response({"object": "segment", "id": sid, "deleted": True})


async def list_segment_contacts(app: EmulatorApp, request: Request) -> Response:
    page = page_params(request)
    items, more = app.store.list_contacts_json(page, request.path_params["id"])
    return json_list_response(items, more)


async def add_contact_segment(app: EmulatorApp, request: Request) -> Response:
    sid = request.path_params["segment_id"]
    cid = app.store.add_membership(request.path_params["id"], sid)
    return json_response({"object": "contact_segment", "id": sid, "contact_id": cid, "segment_id": sid})


async def remove_contact_segment(app: EmulatorApp, request: Request) -> Response:
    sid = request.path_params["segment_id"]
    cid = app.store.remove_membership(request.path_params["id"], sid)
    return json_response(
        {
            "object": "contact_segment",
            "id": cid,
            "contact_id": cid,
            "segment_id": sid,
            "audienceId": sid,
            "deleted": True,
        }
    )


async def list_contact_segments(app: EmulatorApp, request: Request) -> Response:
    data, more = app.store.list_contact_segments(request.path_params["id"], newer_page(app, request))
    return json_response(list_body(data, more))


ROUTES: RouteTable = [
    ("/segments", {"POST": create_segment, "GET": list_segments}),
    ("/segments/{id}", {"GET": get_segment, "PATCH": update_segment, "DELETE": delete_segment}),
    ("/segments/{id}/contacts", {"GET": list_segment_contacts}),
    ("/contacts/{id}/segments", {"GET": list_contact_segments}),
    (
        "/contacts/{id}/segments/{segment_id}",
        {"POST": add_contact_segment, "DELETE": remove_contact_segment},
    ),
]
