"""Property-based: for random live and declared states, apply converges (a fresh plan is
empty) and nothing outside the declared scope changes, under both emulator profiles
(``unknowns="benign"|"hostile"``) and with lagging lists.

With a lag, every live contact is hidden from the lists when the apply plans (as if all had
just been written; reads by email still see them): the plan believes them new, so apply
must find them by email and update only their declared fields. Then the lag passes, one
more plan/apply catches up what the hidden contacts hid (memberships to remove, contacts to
prune), and the fresh plan must be empty."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resend_iac.client import read_live
from resend_iac.emulator import create_app
from resend_iac.engine import apply
from resend_iac.engine.consent import holds_consent
from resend_iac.engine.live import plan_live
from resend_iac.local import client_for_app
from resend_iac.model import UNSET, Contact, Policy, Property, Segment, State, Topic
from resend_iac.model.schema import CONTACT, Field

EMAILS = ["ann@x.com", "Bob@x.com", "cy@x.com", "dee@x.com", "eve@x.com", "fay@x.com"]
SEGMENTS = ["a", "b", "c"]
TOPICS = ["news", "billing"]
PROPERTIES = ["company", "tier"]


def field_values(f: Field):
    """Values of a declared contact field (every field the contact schema declares is drawn)."""
    if f.choices:
        options: list = list(f.choices)
    elif bool in f.types:
        options = [True, False]
    elif str in f.types:
        options = ["Ann", "Bob"]
    else:
        options = [1, 2.5]
    return st.sampled_from(options + ([None] if f.nullable else []))


def values_for(ptype: str):
    return (
        st.sampled_from(["acme", "globex", None]) if ptype == "string" else st.sampled_from([1, 2, 7.5, None])
    )


@st.composite
def states(draw, desired: bool) -> State:
    s = State()
    for key in draw(st.lists(st.sampled_from(PROPERTIES), unique=True)):
        ptype = draw(st.sampled_from(["string", "number"]))
        fb = draw(st.one_of(st.just(UNSET), values_for(ptype))) if desired else draw(values_for(ptype))
        s.properties[key] = Property(key, ptype, fb)
    for name in draw(st.lists(st.sampled_from(SEGMENTS), unique=True)):
        s.segments[name] = Segment(
            name, draw(st.sampled_from(["authoritative", "additive"])) if desired else "authoritative"
        )
    for name in draw(st.lists(st.sampled_from(TOPICS), unique=True)):
        s.topics[name] = Topic(
            name,
            draw(st.sampled_from(["opt_in", "opt_out"])),
            draw(st.sampled_from([UNSET, None, "about"] if desired else [None, "about"])),
            draw(st.sampled_from([UNSET, "public", "private"] if desired else ["public", "private"])),
        )
    maybe = (lambda strat: st.one_of(st.just(UNSET), strat)) if desired else (lambda strat: strat)
    for email in draw(st.lists(st.sampled_from(EMAILS), unique=True)):
        props = {}
        for key, p in s.properties.items():
            if not desired or draw(st.booleans()):
                v = draw(values_for(p.type))
                if desired or v is not None:
                    props[key] = v
        topics = {}
        for name in s.topics:
            if draw(st.booleans()):
                topics[name] = draw(st.sampled_from(["opt_in", "opt_out"]))
        s.add_contact(
            Contact(
                email,
                **{f.name: draw(maybe(field_values(f))) for f in CONTACT.values},
                properties=props,
                segments=set(draw(st.lists(st.sampled_from(sorted(s.segments)), unique=True)))
                if s.segments
                else set(),
                topics=topics,
            )
        )
    if desired:
        s.policy = Policy(
            prune_contacts=draw(st.booleans()),
            prune_segments=draw(st.booleans()),
            prune_topics=draw(st.booleans()),
            prune_properties=draw(st.booleans()),
        )
    return s


async def read_all(client) -> State:
    keys = [e.lower() for e in EMAILS]
    return await read_live(client, property_emails=keys, topic_emails=keys)


async def plan_apply(client, desired: State, allow_resubscribe: bool = False):
    plan, live = await plan_live(client, desired, allow_resubscribe=allow_resubscribe)
    await apply(plan, client, live=live, allow_resubscribe=allow_resubscribe)
    return plan


LAG = 1000.0  # seconds; skipped with store.advance(), never waited


async def scenario(
    live_state: State, desired: State, allow_resubscribe: bool, unknowns: str = "benign", lag: bool = False
) -> None:
    app = create_app(":memory:", rate_limit=0, unknowns=unknowns, list_lag=LAG if lag else 0.0)
    async with client_for_app(app) as client:
        await plan_apply(client, live_state)  # seed the live team
        app.store.advance(LAG + 1)
        before = await read_all(client)
        if lag:  # every live contact just written: hidden from the lists, found by email
            now = app.store.clock()
            app.store.written = {seq: now for (seq,) in app.store.read("SELECT seq FROM contacts")}
            await plan_apply(client, desired, allow_resubscribe)
            await plan_apply(client, desired, allow_resubscribe)  # still lagging: harmless
            app.store.advance(LAG + 1)
        await plan_apply(client, desired, allow_resubscribe)
        app.store.advance(LAG + 1)
        fresh, _ = await plan_live(client, desired, allow_resubscribe=allow_resubscribe)
        assert fresh.empty, [(c.action, c.kind, c.key, c.before, c.after) for c in fresh.changes]
        after = await read_all(client)
    check_scope(before, after, desired, lag)
    check_declared(before, after, desired, allow_resubscribe, lag)


def check_scope(before: State, after: State, desired: State, lag: bool = False) -> None:
    pol = desired.policy
    # Known limit (docs/plan-apply.md, "Consent and data across changes"): a topic replaced while
    # a lagging list hides a contact cannot carry that contact's opt-out, which nothing has read.
    hidden_loss = [
        n
        for n, t in desired.topics.items()
        if lag and n in before.topics and before.topics[n].default_subscription != t.default_subscription
    ]
    for coll, prune in (
        ("properties", pol.prune_properties),
        ("segments", pol.prune_segments),
        ("topics", pol.prune_topics),
    ):
        for name, obj in getattr(before, coll).items():
            if name in getattr(desired, coll):
                continue
            if prune:
                assert name not in getattr(after, coll)
            else:
                assert name in getattr(after, coll) and getattr(after, coll)[name].id == obj.id, (coll, name)
    authoritative = {n for n, s in desired.segments.items() if s.membership == "authoritative"}
    for key, was in before.contacts.items():
        now = after.contacts.get(key)
        want = desired.contacts.get(key)
        if want is None:
            gone = [n for n in before.topics if n not in desired.topics] if pol.prune_topics else []
            if pol.prune_contacts and not holds_consent(was, [*gone, *hidden_loss]):
                assert now is None, key
                continue
            assert now is not None and now.id == was.id, key
            assert [getattr(now, f.name) for f in CONTACT.values] == [
                getattr(was, f.name) for f in CONTACT.values
            ]
            kept = {s for s in was.segments if s not in authoritative and s in after.segments}
            assert kept <= now.segments and not (now.segments - was.segments), key
            continue
        assert now is not None and now.id == was.id, key  # declared contacts are never recreated
        for f in CONTACT.values:
            if getattr(want, f.name) is UNSET:
                assert getattr(now, f.name) == getattr(was, f.name), (key, f.name)
        for s in now.segments - was.segments:
            assert s in want.segments, (key, s)


def check_declared(
    before: State, after: State, desired: State, allow_resubscribe: bool, lag: bool = False
) -> None:
    """An oracle independent of diff(): the declared state holds live after apply."""
    for kind in ("properties", "segments", "topics"):
        assert set(getattr(desired, kind)) <= set(getattr(after, kind)), kind
    for key, p in desired.properties.items():
        assert after.properties[key].type == p.type
        if p.fallback_value is not UNSET:
            assert after.properties[key].fallback_value == p.fallback_value
    refused = set()
    for name, t in desired.topics.items():
        got = after.topics[name]
        old = before.topics.get(name)
        if (
            old is not None
            and old.default_subscription != t.default_subscription
            and t.default_subscription == "opt_out"
            and any(
                isinstance(c.topics, dict)
                and c.topics.get(name) == "opt_in"
                and (k not in desired.contacts or name not in desired.contacts[k].topics)
                for k, c in before.contacts.items()
                if k in desired.contacts
                or not desired.policy.prune_contacts
                or holds_consent(
                    c,
                    [n for n in before.topics if n not in desired.topics]
                    if desired.policy.prune_topics
                    else (),
                )
            )
        ):
            refused.add(name)  # a contact's own opt-in would be lost: the change is refused (#23)
            if lag:  # known limit: contacts a lagging list hides are not read, so not counted
                assert got.default_subscription in (old.default_subscription, t.default_subscription)
                continue
            assert got.default_subscription == old.default_subscription, name
            continue
        assert got.default_subscription == t.default_subscription
        if t.description is not UNSET:
            assert got.description == t.description
        if t.visibility is not UNSET:
            assert got.visibility == t.visibility
    for name, seg in desired.segments.items():
        members = after.segment_members(name)
        declared = desired.segment_members(name)
        assert declared <= members, name
        if seg.membership == "authoritative":
            assert members == declared, name
    for key, want in desired.contacts.items():
        now, was = after.contacts[key], before.contacts.get(key)
        for f in CONTACT.values:
            w = getattr(want, f.name)
            if f.owned_by_contact:
                # consent is not ours to flip: a contact that chose less email keeps it
                guarded = not allow_resubscribe and was is not None and getattr(was, f.name) == f.less_email
                if guarded:
                    assert getattr(now, f.name) == f.less_email, (key, f.name)
                    continue
            if w is not UNSET:
                assert f.same(getattr(now, f.name), w), (key, f.name)
        for pk, v in want.properties.items():
            assert now.properties.get(pk) == v, (key, pk)
        for name, sub in want.topics.items():
            explicit = now.topics.get(name)
            effective = explicit or after.topics[name].default_subscription
            was_explicit = None if was is None or was.topics is UNSET else was.topics.get(name)
            # the valve (#23): an opt-out is kept through a replace too, and nobody unsubscribed
            # live is opted in
            kept_opt_out = not allow_resubscribe and was_explicit == "opt_out" and sub == "opt_in"
            if (
                kept_opt_out
                and lag
                and name in before.topics
                and before.topics[name].default_subscription != desired.topics[name].default_subscription
            ):
                # Known limit (docs/plan-apply.md): the topic was replaced while the lagging list
                # hid this contact, so its opt-out was not carried (open in issue 23)
                assert effective in ("opt_out", sub), (key, name)
                continue
            # (also when the files unsubscribe it in the same apply: an opt-in is not written
            # to a contact unsubscribed from everything)
            if not allow_resubscribe and sub == "opt_in" and (guarded or now.unsubscribed is True):
                assert was is None or explicit != "opt_in" or was_explicit == "opt_in", (key, name)
                continue
            assert effective == ("opt_out" if kept_opt_out else sub), (key, name)


@pytest.mark.parametrize(
    "unknowns,lag", [("benign", False), ("hostile", False), ("benign", True), ("hostile", True)]
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(live_state=states(desired=False), desired=states(desired=True), allow_resubscribe=st.booleans())
def test_apply_converges_and_stays_in_scope(unknowns, lag, live_state, desired, allow_resubscribe):
    asyncio.run(scenario(live_state, desired, allow_resubscribe, unknowns, lag))
