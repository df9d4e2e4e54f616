"""The deprecated audience routes (an audience is a segment; the SDKs still call these when
given an ``audience_id``). No tables of their own: segments.py and contacts.py hold the data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from resend_iac.emulator.contacts import parse_contact_fields, parse_properties, update_contact
from resend_iac.emulator.errors import APIError, invalid, missing, valid_email
from resend_iac.emulator.wire import (
    Response,
    RouteTable,
    json_body,
    json_list_response,
    json_response,
    list_body,
    page_params,
    req_str,
)

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp


async def create_audience(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request)
    name = req_str(body, "name")
    sid = app.store.create_segment(name)
    return json_response({"object": "audience", "id": sid, "name": name}, 201)


async def list_audiences(app: EmulatorApp, request: Request) -> Response:
    data, more = app.store.list_segments(page_params(request))
    return json_response(list_body(data, more))


async def get_audience(app: EmulatorApp, request: Request) -> Response:
    return json_response({**app.store.get_segment(request.path_params["id"]), "object": "audience"})


async def delete_audience(app: EmulatorApp, request: Request) -> Response:
    sid = request.path_params["id"]
    app.store.delete_segment(sid)
    return json_response({"object": "audience", "id": sid, "deleted": True})


async def create_audience_contact(app: EmulatorApp, request: Request) -> Response:
    """Create (or find) the global contact and add it to the audience's segment."""
    aid = request.path_params["audience_id"]
    app.store.get_segment(aid)  # 404 "Audience not found"
    body = await json_body(request)
    if body.get("email") is None:
        raise missing("email")
    if not valid_email(body["email"]):
        raise invalid(
            "Invalid `email` field. The email address needs to follow the `email@example.com` format."
        )
    values = {k: v for k, v in parse_properties(body).items() if v is not None}
    cid = app.store.create_contact(body["email"], parse_contact_fields(body), values, [], [])
    app.store.add_membership(cid, aid)
    return json_response({"object": "contact", "id": cid}, 201)


async def list_audience_contacts(app: EmulatorApp, request: Request) -> Response:
    aid = request.path_params["audience_id"]
    app.store.get_segment(aid)
    items, more = app.store.list_contacts_json(page_params(request), aid)
    return json_list_response(items, more)


async def get_audience_contact(app: EmulatorApp, request: Request) -> Response:
    """Recorded (resend-node): 404 "Contact not found" once the contact left that
    segment (it still exists); 200 with the same body as ``GET /contacts/{ref}``,
    ``properties`` included (the newest recordings, 2025-11-30; older ones had none)."""
    aid, ref = request.path_params["audience_id"], request.path_params["id"]
    app.store.get_segment(aid)
    contact = app.store.get_contact(ref)
    if not app.store.is_member(ref, aid):
        raise APIError(404, "not_found", "Contact not found")
    return json_response(contact)


async def delete_audience_contact(app: EmulatorApp, request: Request) -> Response:
    """Removes the contact from the audience only (contacts are global now; the HAR
    shows contact ids surviving such deletes). Unknown contact: 200 (HAR). The answer is
    recorded as ``{object, contact: <the reference as passed>, deleted}``, nothing else."""
    ref, aid = request.path_params["id"], request.path_params["audience_id"]
    try:
        app.store.remove_membership(ref, aid)
    except APIError as err:
        if err.status != 404:
            raise
    return json_response({"object": "contact", "contact": ref, "deleted": True})


ROUTES: RouteTable = [
    ("/audiences", {"POST": create_audience, "GET": list_audiences}),
    ("/audiences/{id}", {"GET": get_audience, "DELETE": delete_audience}),
    ("/audiences/{audience_id}/contacts", {"POST": create_audience_contact, "GET": list_audience_contacts}),
    (
        "/audiences/{audience_id}/contacts/{id}",
        {"GET": get_audience_contact, "PATCH": update_contact, "DELETE": delete_audience_contact},
    ),
]
