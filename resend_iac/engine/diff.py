"""diff(desired, live) -> Plan: what must change for the live team to match the files.

Rules (see the package README for the user-facing version):
- Keys: properties by key, segments and topics by name, contacts by normalised email.
- Omitted means unmanaged: a desired field that is UNSET is not compared; live objects no file
  declares are left alone unless the policy prunes that collection.
- Immutable fields (a property's type, a topic's default_subscription) changed: ``replace``.
  Replacing a property drops its values on every contact; replacing a topic drops every
  contact's explicit subscription to it. The plan warns, and the diff treats those live values
  as gone, so the values the files declare are written again after the replacement.
- Contacts: field updates carry only the changed fields (and only the changed keys of the
  ``properties`` map, found by DeepDiff; numbers compare by value, 5 == 5.0). Live property values missing from a contact count as None; a topic a
  contact has not set counts as the topic's default_subscription. ``""`` and None are the same
  first/last name (Resend returns null for an empty name).
- Membership: new contacts get their segments and topics in the create. For existing contacts,
  one ``membership`` change per (contact, segment) added or removed. An authoritative segment
  loses the live members nobody declares in it (unless they are being deleted anyway); an
  additive segment never loses members.
- Consent (the rules are engine/consent.py's): a contact that is unsubscribed live is never
  resubscribed (``unsubscribed: false``), an explicit live topic ``opt_out`` is never flipped to
  ``opt_in``, nor is a contact unsubscribed live opted in, unless ``allow_resubscribe`` names it;
  the change is left out of the plan with a warning. (Opting a contact in to a topic it never
  set is a declared subscription, not a resubscription, and is planned.) A replaced topic keeps
  every explicit opt-out (written to the new topic in the same apply); a default change that
  would take a contact's own opt-in away is refused. A contact or topic the consent ledger
  knows, created again, gets its recorded choices back.
- Prune keeps a contact that is unsubscribed or opted out of a topic (or whose subscriptions
  were not read) unless ``consent.prune_unsubscribed`` (``--prune-unsubscribed``), and one the
  ledger remembers as ``protect: true``; the plan says why in its warnings.
- Protect: a contact declared ``protect: true`` is never deleted.
- Renames in place: a segment or topic declared with ``renamed_from: OLD`` whose new name is
  not live but OLD is, is renamed (an ``update`` whose before/after name the old and new
  name), keeping its id, members and subscriptions; the rest of the diff sees the live object
  (and every contact's memberships and subscriptions) under the new name (engine/renames.py).
- Losses counted: a property replaced or deleted counts the contacts that hold a value the
  files do not write again (``loses.values``; ``loses.unread``: contacts whose values were not
  read), a segment deleted its members, a topic replaced or deleted the explicit
  subscriptions read; the plan line shows them and safety refuses lost values without --force.
"""

from __future__ import annotations

import gc
from typing import Any

from resend_iac.engine import consent as valve
from resend_iac.engine.consent import Consent
from resend_iac.engine.fingerprint import fingerprints
from resend_iac.engine.plan import KINDS, Change, Plan
from resend_iac.engine.renames import merge_renames, renamed_view
from resend_iac.errors import ResendIACError
from resend_iac.model import UNSET, Contact, Policy, State, is_set
from resend_iac.model.schema import CONTACT, PROPERTY, SEGMENT, TOPIC, Kind


class DiffError(ResendIACError):
    pass


def read_scope(desired: State) -> tuple[set[str], set[str]]:
    """Normalised emails whose property values / topic subscriptions the diff needs read."""
    property_emails = {k for k, c in desired.contacts.items() if is_set(c.properties) and c.properties}
    topic_emails = {k for k, c in desired.contacts.items() if is_set(c.topics) and c.topics}
    return property_emails, topic_emails


def _policy_dict(policy: Policy) -> dict[str, Any]:
    return {
        "prune_contacts": policy.prune_contacts,
        "prune_segments": policy.prune_segments,
        "prune_topics": policy.prune_topics,
        "prune_properties": policy.prune_properties,
        "max_delete_fraction": policy.max_delete_fraction,
        "max_update_fraction": policy.max_update_fraction,
        "threshold_min_objects": policy.threshold_min_objects,
        "broadcast_window_hours": policy.broadcast_window_hours,
    }


def _contact_fields(c: Contact) -> dict[str, Any]:
    out = CONTACT.plan_fields(c)
    if is_set(c.properties) and c.properties:
        out["properties"] = dict(c.properties)
    out["segments"] = sorted(c.segments)
    if is_set(c.topics) and c.topics:
        out["topics"] = dict(c.topics)
    return out


class _Differ:
    def __init__(self, desired: State, live: State, consent: Consent):
        self.desired = desired
        self.live = live
        self.consent = consent
        self.allow = consent.allow
        self.remembered: dict[str, dict[str, str]] = {}  # ledger opt-outs of topics to create
        self.carried: dict[str, dict[str, str]] = {}  # key -> {topic: "opt_out"} to write
        self.changes: list[Change] = []
        self.warnings: list[str] = []
        self.replaced_properties: set[str] = set()
        self.replaced_topics: set[str] = set()
        self.deleted_contacts: set[str] = set()
        self._defaults: dict[str, str] = {}

    # -- properties, segments, topics ------------------------------------------------

    def _objects(self, kind: Kind, prune: bool, replaced: set[str]) -> None:
        """Create, replace (an immutable field changed), update (the managed mutable fields
        that differ) and, when ``prune``, delete the objects of ``kind`` (property, segment,
        topic), as the kind's schema declares its fields."""
        desired: dict[str, Any] = getattr(
            self.desired, kind.name + "s" if kind.name != "property" else "properties"
        )
        live: dict[str, Any] = getattr(
            self.live, kind.name + "s" if kind.name != "property" else "properties"
        )
        for key, want in desired.items():
            have = live.get(key)
            if have is None:
                self.changes.append(Change("create", kind.name, key, None, kind.plan_fields(want)))
                continue
            changed = next(
                (
                    f
                    for f in kind.immutable
                    if is_set(getattr(want, f.name))
                    and not f.same(getattr(want, f.name), getattr(have, f.name))
                ),
                None,
            )
            if changed is not None and kind is TOPIC:  # consent carried, or refused (#23)
                self._replace_topic(key, want, have)
                continue
            if changed is not None:
                replaced.add(key)
                loses = self._losses(kind.name, key, "replace")
                self.changes.append(
                    Change(
                        "replace",
                        kind.name,
                        key,
                        kind.plan_fields(have),
                        kind.plan_fields(want),
                        id=have.id,
                        loses=loses,
                    )
                )
                counted = f" ({_losses_text(loses)})" if loses and "values" in loses else ""
                self.warnings.append(
                    f"{kind.name} {key!r} is replaced ({changed.name} {getattr(have, changed.name)} -> "
                    f"{getattr(want, changed.name)}): {kind.replace_note}{counted}"
                )
                continue
            before, after = {}, {}
            for f in kind.mutable:
                w, h = getattr(want, f.name), getattr(have, f.name)
                if is_set(w) and not f.same(w, h):
                    before[f.name], after[f.name] = (h if is_set(h) else None), w
            if after:
                self.changes.append(Change("update", kind.name, key, before, after, id=have.id))
        if prune:
            for key, have in live.items():
                if key not in desired:
                    self.changes.append(
                        Change(
                            "delete",
                            kind.name,
                            key,
                            kind.plan_fields(have),
                            None,
                            id=have.id,
                            loses=self._losses(kind.name, key, "delete"),
                        )
                    )

    def _losses(self, kind: str, key: str, action: str) -> dict[str, int]:
        """What replacing or deleting the object drops, counted from the live state."""
        if kind == "property":
            return self._value_losses(key, rewritten=action == "replace")
        if kind == "segment":
            return {"members": sum(1 for c in self.live.contacts.values() if key in c.segments)}
        return self._subscription_losses(key)

    def _value_losses(self, key: str, *, rewritten: bool) -> dict[str, int]:
        """Contacts that lose their live value of property ``key`` (replaced or deleted): every
        live contact holding a value, except (``rewritten``) those whose declaration writes a
        value again; ``unread``: live contacts whose values were not read (they may hold one)."""
        lost = unread = 0
        declared = self.desired.contacts
        for ckey, c in self.live.contacts.items():
            values = c.properties
            if values is UNSET:
                unread += 1
                continue
            if values.get(key) is None:
                continue
            if rewritten:
                want = declared.get(ckey)
                if want is not None and is_set(want.properties) and want.properties.get(key) is not None:
                    continue
            lost += 1
        return {"values": lost, "unread": unread} if unread else {"values": lost}

    def _subscription_losses(self, name: str) -> dict[str, int]:
        """Explicit subscriptions to topic ``name`` among the contacts whose subscriptions
        were read (a replaced or deleted topic drops them)."""
        n = sum(1 for c in self.live.contacts.values() if c.topics is not UNSET and name in c.topics)
        return {"subscriptions": n}

    def properties(self) -> None:
        self._objects(PROPERTY, self.desired.policy.prune_properties, self.replaced_properties)

    def segments(self) -> None:
        self._objects(SEGMENT, self.desired.policy.prune_segments, set())

    def topics(self) -> None:
        self._objects(TOPIC, self.desired.policy.prune_topics, self.replaced_topics)

    def _replace_topic(self, name: str, want: Any, have: Any) -> None:
        """A default_subscription change: refused while a contact's own opt-in would be lost;
        else a replace that keeps undeclared fields and carries every explicit opt-out."""
        old, new = have.default_subscription, want.default_subscription
        explicit, unread = valve.explicit_choices(self.live, name, skip=self.deleted_contacts)
        carried, refused = valve.carry_topic(new, explicit, valve.declared_choices(self.desired, name))
        if refused:
            self.warnings.append(valve.refused_words(name, old, new, refused))
            return
        self.replaced_topics.add(name)
        after = TOPIC.plan_fields(want)
        for f in ("description", "visibility"):  # undeclared: kept as they are live
            if f not in after and is_set(getattr(have, f)):
                after[f] = getattr(have, f)
        # Counted: the explicit subscriptions the replace drops (opt-outs are carried over).
        lost = {"subscriptions": max(0, self._subscription_losses(name)["subscriptions"] - len(carried))}
        self.changes.append(
            Change("replace", "topic", name, TOPIC.plan_fields(have), after, id=have.id, loses=lost)
        )
        total = len(self.live.contacts) - len(self.deleted_contacts)
        self.warnings.append(valve.replace_words(name, old, new, explicit, total, unread))
        for key in carried:
            self.carried.setdefault(key, {})[name] = valve.OPT_OUT

    # -- contacts -------------------------------------------------------------------

    def _topic_default(self, name: str) -> str:
        if name in self.live.topics and name not in self.replaced_topics:
            return self.live.topics[name].default_subscription
        if name in self.desired.topics:
            return self.desired.topics[name].default_subscription
        return "opt_in"

    def prune(self) -> None:
        """Contacts no file declares, deleted when the policy prunes them (before topics():
        a topic replace is not refused for the choices of contacts deleted anyway)."""
        if self.desired.policy.prune_contacts:
            for key, have in self.live.contacts.items():
                if key in self.desired.contacts:
                    continue  # declared (protected or not): never deleted
                if self._keep(have):
                    continue
                before = CONTACT.plan_fields(have)
                before["segments"] = sorted(have.segments)
                self.deleted_contacts.add(key)
                self.changes.append(
                    Change("delete", "contact", key, before, None, id=have.id, email=have.email)
                )

    def contacts(self) -> None:
        # Every topic's default, once (topics() has settled which are replaced).
        self._defaults = {n: self._topic_default(n) for n in (*self.live.topics, *self.desired.topics)}
        ledger = self.consent.ledger
        new_topics = [n for n in self.desired.topics if n not in self.live.topics]
        self.remembered = valve.remembered_opt_outs(ledger, self.live, new_topics, self.deleted_contacts)
        for key, topics in self.remembered.items():
            for name in topics:
                self.carried.setdefault(key, {})[name] = valve.OPT_OUT
        known_topics = sorted({*self.live.topics, *self.desired.topics})
        for key, want in self.desired.contacts.items():
            have = self.live.contacts.get(key)
            if have is None:
                after = _contact_fields(want)
                if ledger is not None:
                    self.warnings += valve.ledger_create(after, key, ledger, known_topics, self.allow)
                self.changes.append(Change("create", "contact", key, None, after, email=want.email))
            else:
                self._contact_update(key, want, have)
                self._subscriptions(key, want, have)
        self._carry()

    def _keep(self, have: Contact) -> bool:
        """Prune keeps a live contact whose deletion would delete its own choices (unless
        --prune-unsubscribed), whose subscriptions were not read, or that was protected."""
        ledger = self.consent.ledger
        if ledger is not None and ledger.is_protected(have.id):
            self.warnings.append(valve.kept_protected(have.email))
            return True
        if self.consent.prune_unsubscribed:
            return False
        desired, live = self.desired, self.live
        gone = [n for n in live.topics if n not in desired.topics] if desired.policy.prune_topics else ()
        reasons = valve.holds_consent(have, gone)
        if not isinstance(have.topics, dict) and self.live.topics:
            reasons.append("of unknown topic subscriptions (not read)")
        if reasons:
            self.warnings.append(valve.kept_by_prune(have.email, reasons))
            return True
        return False

    def _carry(self) -> None:
        """Write the carried opt-outs (a replaced topic's, the ledger's for a topic created
        again), into the contact's one subscription change."""
        if not self.carried:
            return
        existing = {c.key: c for c in self.changes if c.kind == "subscription"}
        for key, topics in sorted(self.carried.items()):
            have = self.live.contacts.get(key)
            if have is None or key in self.deleted_contacts:
                continue
            change = existing.get(key)
            if change is None:
                change = Change("update", "subscription", key, {}, {}, id=have.id, email=have.email)
                self.changes.append(change)
            before, after = change.before, change.after
            assert before is not None and after is not None  # a subscription change has both
            for name, sub in topics.items():
                if name not in after:
                    before[name] = self._defaults.get(name, "opt_in")
                    after[name] = sub

    def _contact_update(self, key: str, want: Contact, have: Contact) -> None:
        # Scalars compare per field; the properties map by DeepDiff (numbers by value, 5 == 5.0,
        # as on the wire), only for contacts whose managed values differ at all.
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for f in CONTACT.mutable:
            w = getattr(want, f.name)
            if w is UNSET:
                continue
            h = getattr(have, f.name)
            if f.same(w, h):
                continue
            h = f.norm(h)
            if f.resubscribes(h, w) and not self.allow.allows(key):
                self.warnings.append(valve.not_resubscribed(want.email))
                continue
            before[f.name], after[f.name] = h, f.norm(w)
        wp = want.properties
        if wp is not UNSET and wp:
            hp = have.properties
            if hp is UNSET:
                raise DiffError(f"{want.email}: live property values were not read (read_live scope)")
            # The cheap equality check settles the common case (nothing changed): the same
            # test as ``want_view != have_view`` (dict equality: identity, then ==) without
            # building either map; DeepDiff finds which keys of the nested map changed for
            # the few contacts that differ.
            replaced = self.replaced_properties
            for pk, w in wp.items():
                h = None if pk in replaced else hp.get(pk)
                if not (w is h or w == h):
                    break
            else:
                wp = None
            if wp is not None:
                # Imported here: deepdiff loads numpy (~0.2 s and ~28 MB for every command
                # that imports the engine), and only contacts that differ get here.
                from deepdiff import DeepDiff

                want_view = dict(wp)
                have_view = {pk: None if pk in replaced else hp.get(pk) for pk in want_view}
                changed = DeepDiff(have_view, want_view, ignore_numeric_type_changes=True).affected_root_keys
                for pk in sorted(changed):
                    # A replaced property's value is compared as gone (the replace drops it) but
                    # shown as it is live: "10" -> 10, not null -> 10.
                    before.setdefault("properties", {})[pk] = hp.get(pk)
                    after.setdefault("properties", {})[pk] = want_view[pk]
        if after:
            self.changes.append(Change("update", "contact", key, before, after, id=have.id, email=have.email))

    def _subscriptions(self, key: str, want: Contact, have: Contact) -> None:
        wt = want.topics
        if wt is UNSET or not wt:
            return
        ht = have.topics
        if ht is UNSET:
            raise DiffError(f"{want.email}: live topic subscriptions were not read (read_live scope)")
        # Fast check first (no sorting, no per-topic calls): most contacts match.
        replaced, defaults, remembered = self.replaced_topics, self._defaults, self.remembered.get(key)
        if not replaced and not remembered:
            for name, w in wt.items():
                if w != (ht.get(name) or defaults.get(name, "opt_in")):
                    break
            else:
                return
        before, after = {}, {}
        carried = self.carried.get(key, {})
        for name, w in sorted(wt.items()):
            # A replaced topic keeps the contact's opt-out (carried); a topic created again
            # gets the ledger's; its other explicit choices go with the old topic.
            explicit = carried.get(name) if name in replaced or name in (remembered or ()) else ht.get(name)
            effective = explicit or self._topic_default(name)
            if w == effective:
                continue
            if valve.opt_in_blocked(explicit, w, getattr(have, valve.UNSUB.name)) and not self.allow.allows(
                key
            ):
                self.warnings.append(valve.not_opted_in(want.email, name, explicit != valve.OPT_OUT))
                continue
            before[name], after[name] = effective, w
        if after:
            self.changes.append(
                Change("update", "subscription", key, before, after, id=have.id, email=have.email)
            )

    def memberships(self) -> None:
        # Per segment name (every desired segment and every segment a desired contact is
        # declared in): want = the desired contacts declared in it; have = its live members
        # (none if the segment is not live). Planned: want - have for live contacts (new ones
        # are created with their segments), and for authoritative segments have - want,
        # except contacts being deleted. Computed per live contact in one pass (no
        # million-key set per segment); the final sort orders the changes.
        desired, live = self.desired, self.live
        names = set(desired.segments)
        for c in desired.contacts.values():
            names |= c.segments
        authoritative = {
            n
            for n in names
            if (seg := desired.segments.get(n)) is not None and seg.membership == "authoritative"
        }
        live_names = live.segments.keys()
        wanted, deleted, append = desired.contacts.get, self.deleted_contacts, self.changes.append
        for key, live_c in live.contacts.items():
            have = live_c.segments
            want_c = wanted(key)
            want = want_c.segments if want_c is not None else ()
            if want == have:  # the common case: only segments not live yet are to join
                for name in want:
                    if name not in live_names:
                        append(_join(key, live_c, name))
                continue
            for name in want:
                if name not in have or name not in live_names:
                    append(_join(key, live_c, name))
            if key in deleted:
                continue
            for name in have:
                if name in authoritative and name in live_names and name not in want:
                    append(
                        Change(
                            "delete",
                            "membership",
                            key,
                            {"segment": name},
                            None,
                            parent=name,
                            id=live_c.id,
                            email=live_c.email,
                        )
                    )


_ORDER = {k: i for i, k in enumerate(KINDS)}


def _leave_case_collisions_alone(d: _Differ, live: State) -> None:
    """Live contacts whose emails differ only by case (the API may key emails
    case-sensitively): no change touches them (never merged, deleted or written blindly);
    the plan names them."""
    collisions = getattr(live, "email_collisions", None) or {}
    if not collisions:
        return
    d.changes = [
        c
        for c in d.changes
        if c.kind not in ("contact", "membership", "subscription") or c.key not in collisions
    ]
    for key in sorted(collisions):
        d.warnings.append(
            f"live contacts {', '.join(sorted(collisions[key]))} have emails that differ only by "
            "case: left alone (not merged, deleted or written). Delete or rename one of them in "
            "Resend, then plan again."
        )


def diff(
    desired: State, live: State, *, allow_resubscribe: Any = False, consent: Consent | None = None
) -> Plan:
    """The plan that makes ``live`` match ``desired`` (see the module docstring).
    ``allow_resubscribe``: True, or the emails allowed (engine.consent.Allow); ``consent``
    adds --prune-unsubscribed and the consent ledger."""
    # The diff allocates only short-lived objects (freed by reference counting) and keeps
    # few: with millions of contacts in the two States, each full cyclic-GC pass would
    # re-scan all of them for nothing (as in config.loader).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _diff(desired, live, Consent.of(consent, allow_resubscribe))
    finally:
        if enabled:
            gc.enable()


def _diff(desired: State, live: State, consent: Consent) -> Plan:
    # Renames first: the rest of the diff sees the renamed live objects under their new names;
    # the fingerprints below still cover ``live`` as read (what apply --plan re-reads).
    view, renames, notes = renamed_view(desired, live)
    d = _Differ(desired, view, consent)
    d.warnings.extend(notes)
    d.properties()
    d.segments()
    d.prune()
    d.topics()
    d.changes = merge_renames(d.changes, renames)
    d.contacts()
    d.memberships()
    _leave_case_collisions_alone(d, live)
    d.changes.sort(key=lambda c: (_ORDER[c.kind], c.key, c.parent or ""))
    # read_scope's sets, as sorted lists straight away (two million-key sets saved).
    contacts = desired.contacts
    property_emails = sorted(k for k, c in contacts.items() if c.properties is not UNSET and c.properties)
    topic_emails = sorted(k for k, c in contacts.items() if c.topics is not UNSET and c.topics)
    touched = {c.key for c in d.changes if c.kind in ("contact", "subscription") and c.action != "create"}
    verify_props = sorted(
        k
        for k in touched
        if (c := contacts.get(k)) is not None and c.properties is not UNSET and c.properties
    )
    verify_topics = sorted(
        k for k in touched if (c := contacts.get(k)) is not None and c.topics is not UNSET and c.topics
    )
    full_fingerprint, verify_fingerprint = fingerprints(live, verify_props, verify_topics)
    return Plan(
        changes=d.changes,
        fingerprint=full_fingerprint,
        live_counts={
            "property": len(live.properties),
            "segment": len(live.segments),
            "topic": len(live.topics),
            "contact": len(live.contacts),
        },
        warnings=d.warnings,
        policy=_policy_dict(desired.policy),
        consent=consent.to_plan(),
        scope={"property_emails": property_emails, "topic_emails": topic_emails},
        verify={
            "fingerprint": verify_fingerprint,
            "property_emails": verify_props,
            "topic_emails": verify_topics,
        },
    )


def _losses_text(loses: dict[str, int]) -> str:
    text = f"{loses.get('values', 0)} contact(s) lose a value"
    if loses.get("unread"):
        text += f"; {loses['unread']} contact(s) not read may hold one"
    return text


def _join(key: str, live_c: Contact, segment: str) -> Change:
    """A live contact joins a segment (a membership to create)."""
    return Change(
        "create",
        "membership",
        key,
        None,
        {"segment": segment},
        parent=segment,
        id=live_c.id,
        email=live_c.email,
    )
