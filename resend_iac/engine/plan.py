"""The Plan: what diff() found and apply() carries out. Plain data, JSON-serialisable.

A Change names one object by ``kind`` and ``key`` and carries field-level ``before`` and
``after`` maps:
- create:  before None, after = every managed field of the new object
- update:  before/after = only the fields that change
- delete:  before = the live object's fields, after None
- replace: before = live fields, after = desired fields (an immutable field changed:
           delete then create)

Kinds and keys:
- "property":     key = property key
- "segment":      key = segment name; an update is a rename in place (``renamed_from``):
                  before {"name": old}, after {"name": new}, the live id kept
- "topic":        key = topic name; an update may rename it (``name`` in before/after)
- "contact":      key = normalised email. A create's ``after`` also holds "segments"
                  (sorted list of names) and "topics" ({name: subscription}): new contacts
                  get their memberships and subscriptions with their creation.
- "membership":   key = normalised email, ``parent`` = segment name; create = add the
                  existing contact to the segment, delete = remove it.
- "subscription": key = normalised email; before/after = {topic name: subscription} for
                  the topics that change; one request per contact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FORMAT_VERSION = 1

Action = Literal["create", "update", "delete", "replace"]
Kind = Literal["property", "segment", "topic", "contact", "membership", "subscription"]
ACTIONS: tuple[str, ...] = ("create", "update", "replace", "delete")
KINDS: tuple[str, ...] = ("property", "segment", "topic", "contact", "membership", "subscription")

NO_CHANGES = "No changes. The live team matches the declared state."

# How summary() names each kind and its actions: objects are created, updated, replaced and
# deleted; a membership (a contact in a segment) is added or removed; a subscription changes.
_OBJECT_ACTIONS = (("create", "create"), ("update", "update"), ("replace", "replace"), ("delete", "delete"))
_WORDS: dict[str, dict[str, Any]] = {
    "property": {"noun": "property", "plural": "properties", "actions": _OBJECT_ACTIONS},
    "segment": {"noun": "segment", "plural": "segments", "actions": _OBJECT_ACTIONS},
    "topic": {"noun": "topic", "plural": "topics", "actions": _OBJECT_ACTIONS},
    "contact": {"noun": "contact", "plural": "contacts", "actions": _OBJECT_ACTIONS},
    "membership": {
        "noun": "membership",
        "plural": "memberships",
        "actions": (("create", "add"), ("update", "update"), ("replace", "replace"), ("delete", "remove")),
    },
    "subscription": {
        "noun": "subscription",
        "plural": "subscriptions",
        "actions": (("create", "add"), ("update", "change"), ("replace", "replace"), ("delete", "remove")),
    },
}


@dataclass
class Change:
    action: Action
    kind: Kind
    key: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    parent: str | None = None  # membership: the segment name
    id: str | None = None  # the live object's id, when it exists
    email: str | None = None  # contacts/memberships/subscriptions: the spelling to show and send
    # What a destructive change drops, counted from the live state (shown on the plan line;
    # safety refuses lost values without --force): "values" (contacts losing a property value
    # the files do not write again), "unread" (contacts whose values were not read: may lose
    # one), "members" (a segment's members), "subscriptions" (explicit topic subscriptions).
    loses: dict[str, int] | None = None

    @property
    def label(self) -> str:
        """What a person reads: the email as spelled, or the key."""
        return self.email or self.key

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("before", "after")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Change":
        return cls(
            action=data["action"],
            kind=data["kind"],
            key=data["key"],
            before=data.get("before"),
            after=data.get("after"),
            parent=data.get("parent"),
            id=data.get("id"),
            email=data.get("email"),
            loses=dict(data["loses"]) if isinstance(data.get("loses"), dict) else None,
        )


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    fingerprint: str = ""  # of the live state the plan was computed from
    live_counts: dict[str, int] = field(default_factory=dict)  # live objects by kind
    warnings: list[str] = field(default_factory=list)  # e.g. resubscriptions left out
    format_version: int = FORMAT_VERSION
    # Added by the engine (optional, backwards-compatible): the declared policy the plan was
    # made under (apply --plan re-checks the safety thresholds with it) and the read scope
    # (normalised emails whose property values / topic subscriptions were read), so that
    # apply --plan re-reads exactly what the fingerprint covers.
    policy: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, list[str]] = field(default_factory=dict)
    # What apply --plan re-reads and compares (engine/fingerprint.py): "fingerprint" over the
    # whole live state but per-contact details only for "property_emails"/"topic_emails"
    # (the contacts the plan changes). Absent in older plan files: then the full re-read.
    verify: dict[str, Any] = field(default_factory=dict)
    # How fresh the per-contact details are (engine/live.py): {"refresh": "auto"|"full",
    # "read_now": contacts read in this run, "from_cache": contacts served from the refresh
    # cache, "oldest_verified": ISO time of the oldest cached read or None, ...}. None: unknown.
    freshness: dict[str, Any] | None = None
    # A plan made with --local: the embedded emulator's state file it was made against, so
    # `apply --local PLAN` applies it to the same local team (absent otherwise).
    local_db: str | None = None
    # A saved plan's binding (engine/binding.py): where it was made (``{"local": team}`` or
    # ``{"api_url", "key_salt", "key_hmac"}``), its random nonce (applied once) and its expiry.
    target: dict[str, str] | None = None
    nonce: str | None = None
    created_at: str | None = None
    expires_at: str | None = None
    # The broadcasts the plan affects (engine/broadcasts.py): one finding per (broadcast,
    # change), {"level": "refuse"|"warn", "rule", "broadcast": {id, name, status,
    # scheduled_at}, "change": {kind, key, action}, "message", ...}; "refuse" ones stop apply
    # without --force. Empty when none is affected (or the plan touches nothing they use).
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    # The consent options the plan was made with (engine/consent.py): {"allow_resubscribe":
    # "*" or [emails], "prune_unsubscribed": true}; apply --plan applies it with them.
    consent: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> Counter[tuple[str, str]]:
        """Number of changes by (kind, action)."""
        return Counter((c.kind, c.action) for c in self.changes)

    def summary(self) -> str:
        """One line naming objects and relations apart, e.g. 'Plan: 2 contacts to create,
        1 to update; 3 memberships to add, 3,000 to remove; 1 subscription to change.'

        Only what changes is named. Not a stable interface: tests and code use ``counts()``."""
        if not self.changes:
            return NO_CHANGES
        counts = self.counts()
        parts = []
        for kind in KINDS:
            words = _WORDS[kind]
            phrases = [
                (counts[(kind, action)], verb) for action, verb in words["actions"] if counts[(kind, action)]
            ]
            if not phrases:
                continue
            (n, verb), rest = phrases[0], phrases[1:]
            noun = words["noun"] if n == 1 else words["plural"]
            parts.append(", ".join([f"{n:,} {noun} to {verb}"] + [f"{m:,} to {v}" for m, v in rest]))
        return "Plan: " + "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "fingerprint": self.fingerprint,
            "live_counts": dict(self.live_counts),
            "warnings": list(self.warnings),
            "summary": {f"{kind}.{action}": n for (kind, action), n in sorted(self.counts().items())},
            "changes": [c.to_dict() for c in self.changes],
            "policy": dict(self.policy),
            "scope": {k: list(v) for k, v in self.scope.items()},
            "verify": dict(self.verify),
            **({"freshness": dict(self.freshness)} if self.freshness is not None else {}),
            **({"local_db": self.local_db} if self.local_db else {}),
            **({"target": dict(self.target)} if self.target else {}),
            **{k: getattr(self, k) for k in ("nonce", "created_at", "expires_at") if getattr(self, k)},
            **({"broadcasts": [dict(b) for b in self.broadcasts]} if self.broadcasts else {}),
            **({"consent": dict(self.consent)} if self.consent else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"plan format_version {version!r} is not supported (this resend-iac reads {FORMAT_VERSION})"
            )
        return cls(
            changes=[Change.from_dict(c) for c in data.get("changes", [])],
            fingerprint=data.get("fingerprint", ""),
            live_counts=dict(data.get("live_counts", {})),
            warnings=list(data.get("warnings", [])),
            format_version=version,
            policy=dict(data.get("policy") or {}),
            scope={k: list(v) for k, v in (data.get("scope") or {}).items()},
            verify=dict(data.get("verify") or {}),
            freshness=dict(data["freshness"]) if isinstance(data.get("freshness"), dict) else None,
            local_db=data.get("local_db") if isinstance(data.get("local_db"), str) else None,
            target=dict(data["target"]) if isinstance(data.get("target"), dict) else None,
            **{k: data[k] for k in ("nonce", "created_at", "expires_at") if isinstance(data.get(k), str)},
            broadcasts=[dict(b) for b in data.get("broadcasts") or () if isinstance(b, dict)],
            consent=dict(data["consent"]) if isinstance(data.get("consent"), dict) else {},
        )
