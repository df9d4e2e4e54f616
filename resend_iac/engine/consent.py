"""The consent valve: what belongs to the contact, not to the files, in one place.

Some state is the contact's own: ``unsubscribed: true`` and an explicit topic ``opt_out``.
The files may move it only toward less email. Every path that writes consent asks this
module: the diff (update, replace, re-create, import, prune), apply (the read right before
each write) and the Pulumi providers (after ``pulumi refresh``).

- ``Allow``: who may be resubscribed (``--allow-resubscribe`` alone: everyone the files say;
  ``--allow-resubscribe EMAIL``, repeatable: those contacts only).
- ``resubscribes`` / ``opts_back_in``: the two moves toward more email that need ``Allow``.
  A topic opt-in is also refused for a contact who is unsubscribed live (``opt_in_blocked``).
- ``holds_consent``: a contact whose deletion would delete a consent record (unsubscribed, or
  opted out of a topic): prune keeps it unless ``--prune-unsubscribed`` is given on the
  command line (``Consent.prune_unsubscribed``; never a file setting).
- ``carry_topic``: what a topic replace must re-apply (every explicit opt-out), and whether it
  must be refused (a contact who chose ``opt_in`` would lose it to the new default).

What a resend-iac run has seen is kept in the consent ledger (``engine/ledger.py``), so a
contact or topic deleted and declared again gets its contacts' choices back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from resend_iac.model import Contact, normalize_email
from resend_iac.model.schema import CONTACT

OPT_IN, OPT_OUT = "opt_in", "opt_out"
# The contact's own field (the schema's ``owned_by_contact`` field: ``unsubscribed``).
UNSUB = next(f for f in CONTACT.values if f.owned_by_contact)


def left_all(item: dict[str, Any]) -> bool:
    """An API answer (or a plan's fields) says the contact unsubscribed from everything."""
    return item.get(UNSUB.api) is UNSUB.less_email


EVERYONE = "*"


@dataclass(frozen=True)
class Allow:
    """Who may be resubscribed: ``everyone`` (the bare flag) or the normalised ``emails``."""

    everyone: bool = False
    emails: frozenset[str] = frozenset()

    @classmethod
    def of(cls, value: Any) -> "Allow":
        """From a bool (the old flag), an Allow, or emails (``"*"`` = everyone)."""
        if isinstance(value, Allow):
            return value
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(everyone=True)
        if isinstance(value, str):
            value = [value]
        emails = [str(v) for v in value]
        if EVERYONE in emails:
            return cls(everyone=True)
        return cls(emails=frozenset(normalize_email(e) for e in emails))

    def allows(self, key: str) -> bool:
        return self.everyone or normalize_email(key) in self.emails

    def __bool__(self) -> bool:
        return self.everyone or bool(self.emails)

    def to_plan(self) -> Any:
        """As saved in a plan: ``"*"``, a sorted list of emails, or absent (None)."""
        if self.everyone:
            return EVERYONE
        return sorted(self.emails) or None


@dataclass
class Consent:
    """The consent options of one plan or apply (the diff and apply take one)."""

    allow: Allow = field(default_factory=Allow)
    prune_unsubscribed: bool = False  # --prune-unsubscribed: a command-line flag only
    ledger: Any = None  # engine.ledger.Ledger, or None (nothing remembered)

    @classmethod
    def of(cls, consent: "Consent | None", allow_resubscribe: Any = False) -> "Consent":
        if consent is None:
            return cls(allow=Allow.of(allow_resubscribe))
        if allow_resubscribe and not consent.allow:
            return cls(Allow.of(allow_resubscribe), consent.prune_unsubscribed, consent.ledger)
        return consent

    def to_plan(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        allowed = self.allow.to_plan()
        if allowed is not None:
            out["allow_resubscribe"] = allowed
        if self.prune_unsubscribed:
            out["prune_unsubscribed"] = True
        return out

    @classmethod
    def from_plan(cls, data: dict[str, Any] | None, ledger: Any = None) -> "Consent":
        data = data or {}
        return cls(Allow.of(data.get("allow_resubscribe")), bool(data.get("prune_unsubscribed")), ledger)


# -- the valve ------------------------------------------------------------------------------


def resubscribes(live_out: Any, want: Any) -> bool:
    """Writing ``unsubscribed: want`` over the live value ``live_out`` moves toward more email."""
    return UNSUB.resubscribes(live_out, want)


def opts_back_in(explicit: Any, want: Any) -> bool:
    """Writing ``want`` over the contact's explicit ``explicit`` subscription opts it back in."""
    return bool(explicit == OPT_OUT and want == OPT_IN)


def opt_in_blocked(explicit: Any, want: Any, out_of_all: Any) -> bool:
    """A topic opt-in that is the contact's to give: over its own opt-out, or while it is
    unsubscribed from everything."""
    return want == OPT_IN and (explicit == OPT_OUT or out_of_all is True)


def holds_consent(contact: Contact, gone: Any = ()) -> list[str]:
    """What a contact's deletion would delete of its own choices (empty: nothing); opt-outs
    of the topics in ``gone`` (deleted by the same plan) do not count: they go anyway."""
    reasons = []
    if getattr(contact, UNSUB.name) is True:
        reasons.append(UNSUB.name)
    topics = contact.topics if isinstance(contact.topics, dict) else {}
    out = sorted(n for n, s in topics.items() if s == OPT_OUT and n not in gone)
    if out:
        reasons.append("opted out of " + ", ".join(repr(n) for n in out))
    return reasons


def item_holds_consent(item: dict[str, Any], topics: Iterable[dict[str, Any]]) -> bool:
    """The same for a contact as the API answers it (``GET /contacts/{id}`` and its topics)."""
    return left_all(item) or any(t.get("subscription") == OPT_OUT for t in topics)


def carry_topic(
    new_default: str, explicit: dict[str, str], declared: dict[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """A topic replaced with ``new_default``; ``explicit``: normalised email -> the contact's
    explicit subscription to the old topic; ``declared``: normalised email -> what the files
    declare for it (absent: not managed). Returns (carried, refused): the contacts whose
    opt-out must be written to the new topic (an opt-out equal to the new default is carried
    too: it stays the contact's own), and the contacts whose own opt-in the new default would
    take away, the files not managing its subscription (the change is refused while there is
    any; a contact the files manage gets what they declare)."""
    declared = declared or {}
    carried = sorted(k for k, s in explicit.items() if s == OPT_OUT)
    refused = sorted(
        k for k, s in explicit.items() if s == OPT_IN and new_default == OPT_OUT and k not in declared
    )
    return carried, refused


# -- the words, one place ----------------------------------------------------------------------


def not_resubscribed(label: str) -> str:
    return (
        f"{label}: unsubscribed live; not resubscribed (consent is not ours to flip). "
        f"Pass --allow-resubscribe {label} if the contact asked to be resubscribed."
    )


def not_opted_in(label: str, topic: str, out_of_all: bool = False) -> str:
    why = "is unsubscribed live" if out_of_all else f"opted out of topic {topic!r} live"
    return (
        f"{label}: {why}; not opted in to {topic!r} (consent is not ours to flip). "
        f"Pass --allow-resubscribe {label} if the contact asked for it."
    )


def kept_by_prune(label: str, reasons: list[str]) -> str:
    return (
        f"{label}: not deleted although no file declares it: it is {' and '.join(reasons)}, and "
        "deleting it would delete that record. Pass --prune-unsubscribed to delete it anyway "
        "(its choice stays in the consent ledger)."
    )


def kept_protected(label: str) -> str:
    return (
        f"{label}: not deleted: it was declared with protect: true. Declare it with "
        "protect: false (and apply) before removing it from the files."
    )


def from_ledger(label: str, what: str, since: str) -> str:
    return (
        f"{label}: created {what}: the consent ledger recorded this choice on {since}, before "
        "the contact was deleted. Pass --allow-resubscribe "
        f"{label} if the contact asked for otherwise."
    )


# -- what the diff asks (engine/diff.py calls these; each is testable alone) -------------------


def declared_choices(desired: Any, topic: str) -> dict[str, Any]:
    """Normalised email -> the subscription to ``topic`` the files declare (managed only)."""
    return {
        k: c.topics[topic]
        for k, c in desired.contacts.items()
        if isinstance(c.topics, dict) and topic in c.topics
    }


def explicit_choices(live: Any, topic: str, skip: Any = ()) -> tuple[dict[str, str], int]:
    """(normalised email -> explicit subscription to ``topic``, contacts not read) over the
    live contacts whose subscriptions were read, except those in ``skip`` (being deleted)."""
    out: dict[str, str] = {}
    unread = 0
    for key, c in live.contacts.items():
        if key in skip:
            continue
        if not isinstance(c.topics, dict):
            unread += 1
            continue
        sub = c.topics.get(topic)
        if sub in (OPT_IN, OPT_OUT):
            out[key] = sub
    return out, unread


def replace_words(name: str, old: str, new: str, explicit: dict[str, str], total: int, unread: int) -> str:
    carried = [k for k, s in explicit.items() if s == OPT_OUT]
    without = total - len(explicit) - unread
    text = (
        f"topic {name!r} is replaced (default_subscription {old} -> {new}; Resend cannot change it in "
        f"place): {without:,} contact(s) without a choice of their own go from {old} to {new}; "
        f"{len(carried):,} opt-out(s) are carried to the new topic in the same apply"
    )
    if unread:
        text += f"; {unread:,} contact(s) whose subscriptions were not read keep no choice"
    return text + "."


def refused_words(name: str, old: str, new: str, refused: list[str]) -> str:
    return (
        f"topic {name!r}: default_subscription {old} -> {new} refused: {len(refused):,} contact(s) "
        f"opted in to it themselves, and the replaced topic would take that away. Keep the "
        "default, or declare a new topic under another name."
    )


def remembered_opt_outs(
    ledger: Any, live: Any, topics: list[str], skip: set[str]
) -> dict[str, dict[str, str]]:
    """Live contacts (not in ``skip``) the ledger knows opted out of topics in ``topics``
    (topics that do not exist live: deleted, to be created again): key -> {topic: date}."""
    out: dict[str, dict[str, str]] = {}
    if ledger is None or not topics or not ledger.entries["opted_out"]:
        return out
    for key, c in live.contacts.items():
        if key in skip:
            continue
        for name in topics:
            since = ledger.opted_out(c.email, name)
            if since:
                out.setdefault(key, {})[name] = since
    return out


def ledger_create(after: dict[str, Any], key: str, ledger: Any, topics: list[str], allow: Allow) -> list[str]:
    """A contact to create that the ledger knows: its recorded choices go into ``after``
    (the create), each with a warning, unless ``allow`` names it."""
    if ledger is None or ledger.empty or allow.allows(key):
        return []
    label = after.get("email", key)
    warnings = []
    since = ledger.unsubscribed_since(label)
    if since and after.get(UNSUB.name) is not True:
        after[UNSUB.name] = True
        warnings.append(from_ledger(label, UNSUB.name, since))
    for name in topics:
        since = ledger.opted_out(label, name)
        if since and (after.get("topics") or {}).get(name) != OPT_OUT:
            after["topics"] = {**(after.get("topics") or {}), name: OPT_OUT}
            warnings.append(from_ledger(label, f"opted out of topic {name!r}", since))
    return warnings
