"""A fingerprint of a live State: sha256 over a canonical JSON of what was read.

``apply --plan`` re-reads the live team with the plan's read scope and compares
fingerprints: any difference (an object added, removed, renamed, recreated with a new id,
a value changed) means the plan may no longer be right, and apply refuses.

Ids and created_at are included (a saved plan addresses objects by id, so a segment deleted
and recreated under the same name must invalidate it); ``location`` and desired-only settings
(``membership`` mode, ``protect``) are not part of the live state and are excluded.
What was not read is a marker distinct from None. Values are taken as read (both reads come
from the same API, which spells a value the same way each time). Rows are lists in a fixed
field order, sorted by key, so one C-encoded ``json.dumps`` does most of the work.

A plan also carries a narrower *verify* fingerprint for ``apply --plan``: every list-level
fact (all contacts, memberships, properties, segments, topics) but the per-contact details
(property values, topic subscriptions, one request per contact to read) only of the contacts
the plan changes. A detail of a contact the plan does not touch is nothing the apply writes
over, and re-reading it would cost as much as the plan itself.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Collection

from resend_iac.model import UNSET, State

NOT_READ = "\x00not-read"
VERSION = "fp1"


def _v(v: Any) -> Any:
    return NOT_READ if v is UNSET else v


def _map(m: Any) -> Any:
    return NOT_READ if m is UNSET else sorted(m.items())


def canonical(
    live: State, property_emails: Collection[str] | None = None, topic_emails: Collection[str] | None = None,
) -> list[Any]:
    """The managed view of a live state as plain JSON data (lists in a fixed order).

    ``property_emails``/``topic_emails``, when given, narrow the per-contact details covered:
    the property values (subscriptions) of other contacts count as not read."""
    if property_emails is not None or topic_emails is not None:
        pe = None if property_emails is None else set(property_emails)
        te = None if topic_emails is None else set(topic_emails)
        return _canonical(live, lambda k, m: _map(m) if pe is None or k in pe else NOT_READ,
                          lambda k, m: _map(m) if te is None or k in te else NOT_READ)
    return _canonical(live, lambda k, m: _map(m), lambda k, m: _map(m))


def _canonical(live: State, props_of: Any, topics_of: Any) -> list[Any]:
    props = [[k, p.type, _v(p.fallback_value), p.id, p.created_at] for k, p in sorted(live.properties.items())]
    segs = [[k, s.id, s.created_at] for k, s in sorted(live.segments.items())]
    topics = [[k, t.default_subscription, _v(t.description), _v(t.visibility), t.id, t.created_at]
              for k, t in sorted(live.topics.items())]
    contacts = [
        [k, c.email, _v(c.first_name), _v(c.last_name), _v(c.unsubscribed), props_of(k, c.properties),
         sorted(c.segments), topics_of(k, c.topics), c.id, c.created_at]
        for k, c in sorted(live.contacts.items())
    ]
    return [VERSION, props, segs, topics, contacts]


def fingerprint(
    live: State, property_emails: Collection[str] | None = None, topic_emails: Collection[str] | None = None,
) -> str:
    data = json.dumps(canonical(live, property_emails, topic_emails), separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
