"""A fingerprint of a live State: sha256 over a canonical JSON of what was read.

``apply --plan`` re-reads the live team with the plan's read scope and compares
fingerprints: any difference (an object added, removed, renamed, recreated with a new id,
a value changed) means the plan may no longer be right, and apply refuses.

Ids and created_at are included (a saved plan addresses objects by id, so a segment deleted
and recreated under the same name must invalidate it); ``location`` and desired-only settings
(``membership`` mode, ``protect``) are not part of the live state and are excluded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from resend_iac.model import UNSET, State


def _value(v: Any) -> Any:
    if v is UNSET:
        return {"__unset__": True}
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    if isinstance(v, dict):
        return {str(k): _value(x) for k, x in v.items()}
    if isinstance(v, float) and v.is_integer():
        return int(v)  # 5 and 5.0 are the same value on the wire
    return v


def canonical(live: State) -> dict[str, Any]:
    """The managed view of a live state as plain JSON data."""
    return {
        "properties": {
            k: {"key": p.key, "type": p.type, "fallback_value": _value(p.fallback_value),
                "id": p.id, "created_at": p.created_at}
            for k, p in live.properties.items()
        },
        "segments": {
            k: {"name": s.name, "id": s.id, "created_at": s.created_at}
            for k, s in live.segments.items()
        },
        "topics": {
            k: {"name": t.name, "default_subscription": t.default_subscription,
                "description": _value(t.description), "visibility": _value(t.visibility),
                "id": t.id, "created_at": t.created_at}
            for k, t in live.topics.items()
        },
        "contacts": {
            k: {"email": c.email, "first_name": _value(c.first_name),
                "last_name": _value(c.last_name), "unsubscribed": _value(c.unsubscribed),
                "properties": _value(c.properties), "segments": sorted(c.segments),
                "topics": _value(c.topics), "id": c.id, "created_at": c.created_at}
            for k, c in live.contacts.items()
        },
    }


def fingerprint(live: State) -> str:
    data = json.dumps(canonical(live), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
