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
from collections.abc import Collection
from typing import Any

from resend_iac.model import UNSET, State
from resend_iac.model.schema import CONTACT, PROPERTY, SEGMENT, TOPIC, Kind

NOT_READ = "\x00not-read"
VERSION = "fp1"
_CONTACT_FIELDS = CONTACT.fingerprint_fields
assert [r.name for r in CONTACT.relations] == ["properties", "segments", "topics"]  # the row's order


def _v(v: Any) -> Any:
    return NOT_READ if v is UNSET else v


def _map(m: Any) -> Any:
    return NOT_READ if m is UNSET else sorted(m.items())


def canonical(
    live: State,
    property_emails: Collection[str] | None = None,
    topic_emails: Collection[str] | None = None,
) -> list[Any]:
    """The managed view of a live state as plain JSON data (lists in a fixed order).

    ``property_emails``/``topic_emails``, when given, narrow the per-contact details covered:
    the property values (subscriptions) of other contacts count as not read."""
    if property_emails is not None or topic_emails is not None:
        pe = None if property_emails is None else set(property_emails)
        te = None if topic_emails is None else set(topic_emails)
        return _canonical(
            live,
            lambda k, m: _map(m) if pe is None or k in pe else NOT_READ,
            lambda k, m: _map(m) if te is None or k in te else NOT_READ,
        )
    return _canonical(live, lambda k, m: _map(m), lambda k, m: _map(m))


def _row(kind: Kind, key: str, obj: Any) -> list[Any]:
    """A property's, segment's or topic's row: its key, its API fields (schema order), id, created_at."""
    return [key, *(_v(getattr(obj, f.name)) for f in kind.fingerprint_fields), obj.id, obj.created_at]


def _contact_row(key: str, c: Any, props_of: Any, topics_of: Any) -> list[Any]:
    """A contact's row: its key, its API fields (schema order), then its relations (property
    values, segment names, topic subscriptions), id, created_at."""
    return [
        key,
        *(_v(getattr(c, f.name)) for f in _CONTACT_FIELDS),
        props_of(key, c.properties),
        sorted(c.segments),
        topics_of(key, c.topics),
        c.id,
        c.created_at,
    ]


def _canonical(live: State, props_of: Any, topics_of: Any) -> list[Any]:
    props = [_row(PROPERTY, k, p) for k, p in sorted(live.properties.items())]
    segs = [_row(SEGMENT, k, s) for k, s in sorted(live.segments.items())]
    topics = [_row(TOPIC, k, t) for k, t in sorted(live.topics.items())]
    contacts = [_contact_row(k, c, props_of, topics_of) for k, c in sorted(live.contacts.items())]
    return [VERSION, props, segs, topics, contacts]


_CHUNK = 2048  # contacts encoded per json.dumps call


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def fingerprint(
    live: State,
    property_emails: Collection[str] | None = None,
    topic_emails: Collection[str] | None = None,
) -> str:
    """``"sha256:" + hex`` over ``json.dumps(canonical(...))``; see :func:`fingerprints`."""
    if property_emails is None and topic_emails is None:
        return fingerprints(live)[0]
    return fingerprints(
        live,
        property_emails or (),
        topic_emails or (),
        narrow_properties=property_emails is not None,
        narrow_topics=topic_emails is not None,
    )[1]


def fingerprints(
    live: State,
    property_emails: Collection[str] = (),
    topic_emails: Collection[str] = (),
    *,
    narrow_properties: bool = True,
    narrow_topics: bool = True,
) -> tuple[str, str]:
    """``(full, narrowed)``: the fingerprint of everything read and the one narrowed to
    ``property_emails``/``topic_emails`` (the *verify* fingerprint), in one pass.

    The same bytes as ``json.dumps(canonical(live, ...))`` are hashed (plan files keep
    their fingerprints), but streamed: the contacts are encoded a chunk at a time into the
    hashes, so neither the canonical list nor the whole JSON text is ever held, and each
    contact's sorted maps are built once for both fingerprints."""
    full, narrow = hashlib.sha256(), hashlib.sha256()
    # The head of the canonical form: everything but the contacts.
    text = _dumps(canonical(State(properties=live.properties, segments=live.segments, topics=live.topics)))
    assert text.endswith(",[]]")
    head = text[:-2].encode()  # ...,[  (the contacts list is streamed)
    full.update(head)
    narrow.update(head)
    pe = set(property_emails) if narrow_properties else None
    te = set(topic_emails) if narrow_topics else None
    contacts = live.contacts
    keys = sorted(contacts)
    names = [f.name for f in _CONTACT_FIELDS]
    at_props, at_topics = 1 + len(names), 3 + len(names)
    first = True
    for start in range(0, len(keys), _CHUNK):
        rows_full: list[Any] = []
        rows_narrow: list[Any] = []
        for k in keys[start : start + _CHUNK]:
            c = contacts[k]
            props, tops = c.properties, c.topics
            props = NOT_READ if props is UNSET else sorted(props.items())
            tops = NOT_READ if tops is UNSET else sorted(tops.items())
            row = [
                k,
                *[NOT_READ if (v := getattr(c, name)) is UNSET else v for name in names],
                props,
                sorted(c.segments),
                tops,
                c.id,
                c.created_at,
            ]
            rows_full.append(row)
            if (pe is None or k in pe or props is NOT_READ) and (te is None or k in te or tops is NOT_READ):
                rows_narrow.append(row)
            else:
                row = row.copy()
                if pe is not None and k not in pe:
                    row[at_props] = NOT_READ
                if te is not None and k not in te:
                    row[at_topics] = NOT_READ
                rows_narrow.append(row)
        sep = b"" if first else b","
        first = False
        full.update(sep + _dumps(rows_full)[1:-1].encode())
        narrow.update(sep + _dumps(rows_narrow)[1:-1].encode())
    full.update(b"]]")
    narrow.update(b"]]")
    return "sha256:" + full.hexdigest(), "sha256:" + narrow.hexdigest()
