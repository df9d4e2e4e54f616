"""Plan against the live team, in one place: read scope -> read live -> diff.

``plan_live(client, desired, ...)`` is what ``resend-iac plan``/``apply``, ``emulator --seed``
(``cli/target.py``) and the Pulumi ``ContactList`` provider all call. The refresh cache
(``engine/cache.py``) lives behind it, with the refresh policy:

- Lists are always read fresh: contacts (names, ``unsubscribed``), segment members,
  properties, segments, topics.
- ``refresh="full"``: every managed contact's details (property values, topic subscriptions)
  are read, as without a cache.
- ``refresh="auto"`` (default): a managed contact's details are read now if
  (a) the cache has no entry for its id (new, or deleted and re-created: a new id),
  (b) its declared values differ from the cached digests, or its list fields (names,
  ``unsubscribed``) differ from the declared ones, or a property/topic it manages is being
  replaced: so every change a plan shows is computed from a read made in this run;
  (c) it is among the ``budget`` least recently verified contacts served otherwise
  (rotation: successive plans re-verify the whole team, ``ceil(managed / budget)`` plans).
  Every other managed contact is *served from the cache*: its cached digests prove that live
  equals declared for what it manages, so it diffs as "no change" for its properties and
  topics, and a cached value never leads to a write.
- Every read writes the cache: the entries of the contacts read now are rewritten, those of
  contacts no longer listed are dropped. ``forget_written(plan, cache)`` drops the entries of
  every contact a plan is about to write (called before apply: a write whose outcome is unknown
  leaves no entry behind).

``scope`` (which contacts' details the diff needs) defaults to ``read_scope(desired)``; a
narrower scope can be passed later (e.g. a change-scoped pull-request plan).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from resend_iac.client import EVERY_CONTACT, read_live
from resend_iac.client.reader import plain_properties
from resend_iac.engine.broadcasts import check_broadcasts
from resend_iac.engine.cache import Entry, RefreshCache, holds
from resend_iac.engine.consent import Consent
from resend_iac.engine.diff import diff, read_scope
from resend_iac.engine.plan import Plan
from resend_iac.engine.ports import Client
from resend_iac.model import UNSET, Contact, State, is_set
from resend_iac.model.schema import CONTACT

# Contacts re-verified per plan in rotation, beyond those that must be read anyway. Each costs
# one or two requests (property values, subscriptions): at most 200 requests, 40 s at Resend's
# default 5 requests/s, on top of the list floor (253 requests for 10,000 contacts in 150
# segment pages). A team of 10,000 is re-verified every 100 plans; the nightly drift job reads
# the whole team weekly (`--refresh full`), see docs/gitops.md.
DEFAULT_BUDGET = 100
MODES = ("auto", "full")
_MISSING: Any = object()


@dataclass
class Refresh:
    """How a plan reads per-contact details: ``mode`` "auto" or "full", the rotation
    ``budget`` (contacts), and the cache (None: no cache, everything is read)."""

    mode: str = "auto"
    budget: int = DEFAULT_BUDGET
    cache: RefreshCache | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"refresh mode {self.mode!r}: use auto or full")
        if self.budget < 0:
            raise ValueError("the refresh budget is a number of contacts, 0 or more")


@dataclass
class Scope:
    """Normalised emails whose property values / topic subscriptions the diff needs."""

    property_emails: set[str] = field(default_factory=set)
    topic_emails: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, desired: State) -> "Scope":
        p, t = read_scope(desired)
        return cls(p, t)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prop_ref(prop: Any) -> str:
    """What a property value's digest is bound to: the property's id (re-created: a new id) and
    its fallback value (changed: what a contact without a value reads changes)."""
    fallback = prop.fallback_value if is_set(prop.fallback_value) else None
    return f"{prop.id}\0{fallback!r}"


class _Policy:
    """The reader's ``details`` hook (client/reader.py): decides per contact."""

    def __init__(self, desired: State, scope: Scope, refresh: Refresh) -> None:
        self.desired = desired
        self.scope = scope
        self.refresh = refresh
        self.cache = refresh.cache
        self.fresh: set[str] = set()  # keys whose details are read now
        self.served: dict[str, Entry] = {}  # keys served from the cache
        self._prop_refs: dict[str, str | None] = {}  # per run: the lists do not change in it
        self._topics: dict[str, Any] = {}

    # -- DetailPolicy -------------------------------------------------------------------

    def decide(self, key: str, contact: Contact, state: State) -> bool:
        entry = self.cache.entries.get(contact.id or "") if self.cache is not None else None
        if self.refresh.mode == "full" or entry is None or not self._proves(key, contact, entry, state):
            self.fresh.add(key)
            return True
        self.served[key] = entry
        return False

    def more(self, state: State) -> list[str]:
        budget = self.refresh.budget
        if not budget or not self.served:
            return []
        oldest = sorted(self.served, key=lambda k: (self.served[k].verified_at, k))[:budget]
        for key in oldest:
            del self.served[key]
            self.fresh.add(key)
        return oldest

    # -- does the entry prove live == declared? ------------------------------------------

    def _proves(self, key: str, live: Contact, entry: Entry, state: State) -> bool:
        want = self.desired.contacts.get(key)
        if want is None or self.cache is None or not live.id:
            return False
        for f in CONTACT.mutable:
            w = getattr(want, f.name)
            if is_set(w) and not f.same(w, getattr(live, f.name)):
                return False
        cache, cid = self.cache, live.id
        if key in self.scope.property_emails:
            if entry.props is None:
                return False
            for pk, value in want.properties.items():
                ref = self._prop_refs.get(pk, _MISSING)
                if ref is _MISSING:
                    ref = self._prop_refs[pk] = self._prop_ref_of(pk, state)
                if ref is None or not holds(entry.props, cache.prop_digest(cid, ref, value)):
                    return False
        if key in self.scope.topic_emails:
            if entry.topics is None:
                return False
            for name, w in want.topics.items():
                topic = self._topics.get(name, _MISSING)
                if topic is _MISSING:
                    topic = self._topics[name] = self._topic_of(name, state)
                if topic is None:
                    return False
                if holds(entry.topics, cache.topic_digest(cid, topic.id, w)):
                    continue
                if topic.default_subscription == w and holds(
                    entry.topics, cache.topic_digest(cid, topic.id, None)
                ):
                    continue
                return False
        return True

    def _prop_ref_of(self, pk: str, state: State) -> str | None:
        """The digest binding of live property ``pk``; None: no entry can prove its values
        (not live yet, or being replaced)."""
        prop, declared = state.properties.get(pk), self.desired.properties.get(pk)
        if prop is None or not prop.id or (declared is not None and declared.type != prop.type):
            return None
        return _prop_ref(prop)

    def _topic_of(self, name: str, state: State) -> Any:
        """Live topic ``name``; None: no entry can prove its subscriptions (not live yet, or
        being replaced)."""
        topic, declared = state.topics.get(name), self.desired.topics.get(name)
        if topic is None or not topic.id:
            return None
        if declared is not None and declared.default_subscription != topic.default_subscription:
            return None
        return topic

    # -- after the read -------------------------------------------------------------------

    def serve(self, live: State) -> None:
        """Fill the served contacts' details with the declared values (proven equal; the
        declared maps themselves, shared, not copied: nothing writes to either)."""
        contacts, desired = live.contacts, self.desired.contacts
        props, topics = self.scope.property_emails, self.scope.topic_emails
        for key in self.served:
            contact, want = contacts[key], desired[key]
            if key in props:
                contact.properties = want.properties
            if key in topics:
                contact.topics = want.topics

    def freshness(self, live: State) -> dict[str, Any]:
        read_now = sum(1 for k in self.fresh if k in live.contacts)
        oldest = min((e.verified_at for e in self.served.values()), default=None)
        return {
            "refresh": self.refresh.mode,
            "budget": self.refresh.budget,
            "cache": self.cache is not None,
            "read_now": read_now,
            "from_cache": len(self.served),
            "oldest_verified": _iso(oldest),
        }


def remember(cache: RefreshCache, live: State, keys: Collection[str] | None = None) -> int:
    """Write the entries of the contacts of ``live`` whose details were read (``keys``, or
    every contact with details), and drop those of contacts no longer listed. Returns the
    number of entries written."""
    props = [(_prop_ref(p), k) for k, p in live.properties.items() if p.id]
    topics = [(t.id, n) for n, t in live.topics.items() if t.id]
    rows = []
    for key, c in live.contacts.items():
        if not c.id or (keys is not None and key not in keys):
            continue
        has_p, has_t = isinstance(c.properties, dict), isinstance(c.topics, dict)
        if not (has_p or has_t):
            continue
        p = [cache.prop_digest(c.id, pid, c.properties.get(pk)) for pid, pk in props] if has_p else None
        t = [cache.topic_digest(c.id, tid, c.topics.get(n)) for tid, n in topics] if has_t else None
        rows.append((c.id, p, t))
    cache.put(rows, at=time.time())
    cache.keep_only(c.id for c in live.contacts.values() if c.id)
    return len(rows)


async def read_for(
    client: Client,
    desired: State,
    *,
    refresh: Refresh | None = None,
    scope: Scope | None = None,
    progress: Any = None,
    warnings: list[str] | None = None,
) -> tuple[State, dict[str, Any], set[str]]:
    """The live team as the diff of ``desired`` needs it: (live, freshness, fresh keys).
    Contacts served from the cache have their declared details filled in."""
    refresh = refresh or Refresh()
    scope = scope or Scope.of(desired)
    policy = _Policy(desired, scope, refresh)
    live = await read_live(
        client,
        property_emails=scope.property_emails,
        topic_emails=scope.topic_emails,
        progress=progress,
        warnings=warnings,
        details=policy,
    )
    if refresh.cache is not None:
        remember(refresh.cache, live, policy.fresh)
    policy.serve(live)
    return live, policy.freshness(live), policy.fresh


def consent_reads(desired: State, live: State, fresh: Collection[str] = ()) -> list[str]:
    """Contacts whose topic subscriptions the consent rules need read beyond the diff's scope
    (engine/consent.py): every live contact when a topic is replaced or deleted (its explicit
    choices are carried, counted or remembered), else the contacts prune would delete (it keeps
    those who opted out). ``fresh``: contacts whose whole subscription map was read already."""
    if not live.topics:
        return []
    pruned_topics = desired.policy.prune_topics and any(n not in desired.topics for n in live.topics)
    replaced = any(
        n in live.topics and live.topics[n].default_subscription != t.default_subscription
        for n, t in desired.topics.items()
    )
    fresh = set(fresh)
    if pruned_topics or replaced:
        return [k for k, c in live.contacts.items() if k not in fresh or not isinstance(c.topics, dict)]
    if desired.policy.prune_contacts:
        return [
            k
            for k, c in live.contacts.items()
            if k not in desired.contacts and not isinstance(c.topics, dict)
        ]
    return []


async def read_topics(client: Any, live: State, keys: Collection[str], concurrency: int = 8) -> None:
    """Read the topic subscriptions of the live contacts ``keys`` into ``live`` (the client's
    limiter paces the requests; at most ``concurrency`` at a time)."""
    import asyncio

    names = {t.id: n for n, t in live.topics.items() if t.id}
    sem = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        contact = live.contacts[key]
        async with sem:
            items = await client.list_contact_topics(contact.id or contact.email)
        contact.topics = {
            names[i["id"]]: i["subscription"] for i in items if i.get("id") in names and i.get("subscription")
        }

    await asyncio.gather(*(one(k) for k in keys if k in live.contacts))


async def plan_live(
    client: Client,
    desired: State,
    *,
    allow_resubscribe: Any = False,
    refresh: Refresh | None = None,
    scope: Scope | None = None,
    progress: Any = None,
    consent: Consent | None = None,
) -> tuple[Plan, State]:
    """(plan, live): read what the diff of ``desired`` needs (with the refresh policy), and what
    the consent rules need (``consent_reads``), tell the consent ledger what was seen, diff."""
    scope = scope or Scope.of(desired)
    consent = Consent.of(consent, allow_resubscribe)
    live, freshness, fresh = await read_for(client, desired, refresh=refresh, scope=scope, progress=progress)
    fresh |= await read_what_is_lost(client, desired, live, fresh, scope)
    extra = consent_reads(desired, live, fresh & scope.topic_emails)
    if extra:
        await read_topics(client, live, extra)
    if consent.ledger is not None:
        consent.ledger.observe(live)
        consent.ledger.observe_protect(desired, live)
    plan = diff(desired, live, consent=consent)
    # plan.fingerprint covers the state the plan was computed from, served contacts' declared
    # values included; apply --plan checks the verify fingerprint, which covers only the details
    # of the contacts the plan changes: all read in this run (see _Policy._proves).
    if freshness["from_cache"]:
        touched = set(plan.verify.get("property_emails", ())) | set(plan.verify.get("topic_emails", ()))
        if not touched <= fresh:  # cannot happen; never plan a write from the cache
            raise RuntimeError(
                "internal error: a changed contact was served from the refresh cache; "
                "plan again with --refresh full"
            )
    plan.freshness = freshness
    await check_broadcasts(client, plan, live, desired.policy)  # reads them only if needed
    return plan, live


def destroyed(desired: State, live: State) -> tuple[set[str], set[str]]:
    """(property keys, topic names) the diff of ``desired`` replaces or deletes: a type or
    default_subscription changed, or pruned. Renamed topics are not destroyed."""
    props = {
        k for k, w in desired.properties.items() if k in live.properties and w.type != live.properties[k].type
    }
    if desired.policy.prune_properties:
        props |= live.properties.keys() - desired.properties.keys()
    renamed = {t.renamed_from for n, t in desired.topics.items() if t.renamed_from and n not in live.topics}
    topics = {
        n
        for n, w in desired.topics.items()
        if n in live.topics and w.default_subscription != live.topics[n].default_subscription
    }
    for n, w in desired.topics.items():  # renamed: compared under the old live name
        old = w.renamed_from
        if (
            n not in live.topics
            and old in live.topics
            and w.default_subscription != live.topics[old].default_subscription
        ):
            topics.add(old)
    if desired.policy.prune_topics:
        topics |= live.topics.keys() - desired.topics.keys() - renamed
    return props, topics


async def read_what_is_lost(
    client: Client, desired: State, live: State, fresh: set[str], scope: Scope, concurrency: int = 8
) -> set[str]:
    """When the plan will replace or delete a property (a topic), read the values (the
    subscriptions) of every live contact not read in this run, so the diff can count what is
    lost, values written outside the files included (one request per contact, only for such
    plans). Fills ``live`` and returns the keys read."""
    props, topics = destroyed(desired, live)
    if not props and not topics:
        return set()
    names = {t.id: n for n, t in live.topics.items() if t.id}
    sem = asyncio.Semaphore(concurrency)
    read: set[str] = set()

    def unread_props(key: str, c: Contact) -> bool:
        return c.properties is UNSET or (key in scope.property_emails and key not in fresh)

    def unread_topics(key: str, c: Contact) -> bool:
        return c.topics is UNSET or (key in scope.topic_emails and key not in fresh)

    async def one(key: str, c: Contact) -> None:
        ref = c.id or c.email
        async with sem:
            if props and unread_props(key, c):
                c.properties = plain_properties((await client.get_contact(ref)).get("properties"))
            if topics and unread_topics(key, c):
                items = await client.list_contact_topics(ref)
                c.topics = {
                    names[i["id"]]: i["subscription"]
                    for i in items
                    if i.get("id") in names and i.get("subscription")
                }
        read.add(key)

    await asyncio.gather(
        *(
            one(k, c)
            for k, c in live.contacts.items()
            if (props and unread_props(k, c)) or (topics and unread_topics(k, c))
        )
    )
    return read


def forget_written(plan: Plan, cache: RefreshCache | None) -> None:
    """Drop the cache entries of every contact the plan writes (before apply writes them).
    A plan that changes a property or topic itself drops every entry."""
    if cache is None:
        return
    if any(c.kind in ("property", "topic") and c.action != "create" for c in plan.changes):
        cache.drop(list(cache.entries))
        return
    cache.drop({c.id for c in plan.changes if c.kind in ("contact", "subscription") and c.id})


def rotation_plans(managed: int, budget: int) -> int:
    """Plans it takes the rotation to re-verify every managed contact."""
    return math.ceil(managed / budget) if budget else 0


async def read_everything(
    client: Client, cache: RefreshCache | None = None, *, subscriptions: bool = True
) -> State:
    """The whole live team, property values and (``subscriptions``) topic subscriptions
    included (for export). Writes the refresh cache's entries of what it read, if given one."""
    # Two small lists first, so the contacts are listed once and read in detail only for
    # what the team has (no property values to read without properties, nor subscriptions
    # without topics).
    has_properties = bool(await client.list_properties())
    has_topics = subscriptions and bool(await client.list_topics())
    live = await read_live(
        client,
        property_emails=EVERY_CONTACT if has_properties else (),
        topic_emails=EVERY_CONTACT if has_topics else (),
    )
    if cache is not None:
        remember(cache, live)
    for c in live.contacts.values():
        if isinstance(c.properties, dict):
            c.properties = {k: v for k, v in c.properties.items() if v is not None}
        else:
            c.properties = {}
        if not isinstance(c.topics, dict):
            c.topics = {}
        c.id = c.created_at = None
    for collection in (live.properties, live.segments, live.topics):
        for obj in collection.values():
            obj.id = obj.created_at = None
    return live
