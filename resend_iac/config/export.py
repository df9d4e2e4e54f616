"""What ``export`` writes: the live team as a person would manage it, not a snapshot to force.

A file written by export is edited and applied later, when the team has moved on: every field
it states is a claim the next apply enforces. So by default it states only what the team
decides, and leaves the rest unmanaged (omitted):

- no ``null``: an omitted field is unmanaged, while ``first_name: null`` would *clear* a name
  set later (names, property fallbacks and topic descriptions that are empty are left out);
- no consent state (``unsubscribed``, topic subscriptions): those belong to the contacts, and
  a file stating them would undo their later choices. ``--with-consent`` writes them;
- segments ``additive``: members who join later (sign-ups) are not removed by the next apply.
  ``--authoritative-segments`` writes them as they are declared by default (authoritative).

The file's header says what was left out and how to get it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from resend_iac.model import UNSET, State
from resend_iac.model.schema import CONTACT


def managed_view(
    state: State, *, with_consent: bool = False, authoritative_segments: bool = False
) -> tuple[State, list[str]]:
    """(the state as export writes it, the header lines saying what it left out)."""
    notes = ["Omitted fields are unmanaged: empty names and values are left out, not written as null."]
    properties = {
        k: replace(p, fallback_value=UNSET) if p.fallback_value is None else p
        for k, p in state.properties.items()
    }
    topics = {
        n: replace(t, description=UNSET) if t.description in (None, "") else t
        for n, t in state.topics.items()
    }
    if authoritative_segments:
        segments = state.segments
    else:
        segments = {n: replace(s, membership="additive") for n, s in state.segments.items()}
        if segments:
            notes.append(
                "Segments are additive: members who join later are kept. "
                "Export with --authoritative-segments to manage every member."
            )
    consent = [f.name for f in CONTACT.values if f.owned_by_contact]
    consent_maps = [r.name for r in CONTACT.relations if r.owned_by_contact]
    contacts = {}
    for key, c in state.contacts.items():
        fields: dict[str, Any] = {}
        for f in CONTACT.values:
            if not f.owned_by_contact and f.norm(getattr(c, f.name)) is None:
                fields[f.name] = UNSET  # omitted: unmanaged (null would clear it)
        if isinstance(c.properties, dict) and any(v is None for v in c.properties.values()):
            fields["properties"] = {k: v for k, v in c.properties.items() if v is not None}
        if not with_consent:
            fields.update(dict.fromkeys(consent, UNSET))
            fields.update({name: {} for name in consent_maps})
        contacts[key] = _with(c, fields) if fields else c
    if not with_consent and state.contacts:
        notes.append(
            "Consent is left out (unsubscribed, topic subscriptions): it belongs to the contacts. "
            "Export with --with-consent to write it."
        )
    view = State(
        properties=properties,
        segments=segments,
        topics=topics,
        contacts=contacts,
        policy=state.policy,
        email_collisions=state.email_collisions,
    )
    return view, notes


def _with(obj: Any, fields: dict[str, Any]) -> Any:
    """A copy of ``obj`` with ``fields`` set (the original is shared with the live state)."""
    out = copy.copy(obj)
    for name, value in fields.items():
        setattr(out, name, value)
    return out
