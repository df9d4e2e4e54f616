"""Contact properties: the properties table and the routes ``/contact-properties``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import (
    PROPERTY_KEY_RE,
    PROPERTY_TYPES,
    check_fallback,
    invalid,
    missing,
    new_id,
    not_found,
    now_text,
)
from resend_iac.emulator.wire import (
    Response,
    RouteTable,
    json_body,
    json_response,
    list_body,
    newer_page,
    req_str,
)

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp


class PropertiesData(StoreCore):
    """The custom contact properties (their values: contacts.py)."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS properties (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    fallback_value TEXT,
    created_at TEXT NOT NULL
);
"""
    TABLES = ("properties",)

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


# -- routes ------------------------------------------------------------------------------


async def create_property(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request)
    key = req_str(body, "key")
    if not PROPERTY_KEY_RE.match(key):
        raise invalid("The `key` must be 1 to 50 characters: letters, digits and underscores only.")
    if body.get("type") is None:
        raise missing("type")
    ptype = body["type"]
    if ptype not in PROPERTY_TYPES:
        raise invalid("The `type` must be `string` or `number`.")
    fallback = body.get("fallback_value")
    if fallback is not None:
        check_fallback(ptype, fallback)
    pid = app.store.create_property(key, ptype, fallback)
    return json_response({"object": "contact_property", "id": pid}, 201)


async def list_properties(app: EmulatorApp, request: Request) -> Response:
    data, more = app.store.list_properties(newer_page(app, request))
    return json_response(list_body(data, more))


async def get_property(app: EmulatorApp, request: Request) -> Response:
    return json_response(app.store.get_property(request.path_params["id"]))


async def update_property(app: EmulatorApp, request: Request) -> Response:
    pid = request.path_params["id"]
    body = await json_body(request)
    app.store.update_property(pid, body)
    return json_response({"object": "contact_property", "id": pid})


async def delete_property(app: EmulatorApp, request: Request) -> Response:
    pid = request.path_params["id"]
    app.store.delete_property(pid)
    return json_response({"object": "contact_property", "id": pid, "deleted": True})


ROUTES: RouteTable = [
    ("/contact-properties", {"POST": create_property, "GET": list_properties}),
    (
        "/contact-properties/{id}",
        {"GET": get_property, "PATCH": update_property, "DELETE": delete_property},
    ),
]
