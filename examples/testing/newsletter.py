"""The application under test: a newsletter sign-up written with the official Resend
Python SDK (``pip install resend``). It knows nothing about the emulator: it uses whatever
``resend.api_url`` / ``resend.api_key`` say (from ``RESEND_API_URL`` / ``RESEND_API_KEY``)."""

from __future__ import annotations

import resend

SEGMENT = "Newsletter"


def _segment_id(name: str) -> str:
    for segment in resend.Segments.list()["data"]:
        if segment["name"] == name:
            return segment["id"]
    return resend.Segments.create({"name": name})["id"]


def _find_contact(email: str) -> dict | None:
    try:
        return resend.Contacts.get(email=email)
    except resend.exceptions.ResendError as e:
        if str(e.code) == "404":
            return None
        raise


def sign_up(email: str, first_name: str | None = None) -> str:
    """Put ``email`` on the newsletter: create the contact only if it doesn't exist (an
    existing contact keeps its fields and its unsubscribe choice), then add it to the
    segment. Returns the contact's id."""
    contact = _find_contact(email)
    if contact is None:
        params: resend.Contacts.CreateParams = {"email": email}
        if first_name:
            params["first_name"] = first_name
        contact_id = resend.Contacts.create(params)["id"]
    else:
        contact_id = contact["id"]
    resend.Contacts.Segments.add({"contact_id": contact_id, "segment_id": _segment_id(SEGMENT)})
    return contact_id


def subscribers() -> list[str]:
    """Emails of the newsletter segment's members who haven't unsubscribed, sorted."""
    members = resend.Contacts.list(segment_id=_segment_id(SEGMENT))["data"]
    return sorted(c["email"] for c in members if not c["unsubscribed"])
