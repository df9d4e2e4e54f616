"""diff(desired, live) over hand-built States: every change kind, the membership modes,
pruning, the consent guard, protect, and 'omitted means unmanaged'."""

from __future__ import annotations

import pytest

from resend_iac.engine import DiffError, diff, read_scope
from resend_iac.model import UNSET, Contact, Policy, Property, Segment, State, Topic


def live_state(**kw) -> State:
    s = State()
    for p in kw.get("properties", []):
        s.properties[p.key] = p
    for g in kw.get("segments", []):
        s.segments[g.name] = g
    for t in kw.get("topics", []):
        s.topics[t.name] = t
    for c in kw.get("contacts", []):
        s.add_contact(c)
    if "policy" in kw:
        s.policy = kw["policy"]
    return s


desired_state = live_state


def by(plan, kind, action=None):
    return [c for c in plan.changes if c.kind == kind and (action is None or c.action == action)]


def test_identical_states_give_an_empty_plan():
    props = [Property("plan", "string", "free", id="p1")]
    live = live_state(
        properties=props,
        segments=[Segment("news", id="s1")],
        topics=[Topic("weekly", "opt_in", "Weekly", "public", id="t1")],
        contacts=[
            Contact("a@x.com", "Ann", None, False, {"plan": "pro"}, {"news"}, {"weekly": "opt_out"}, id="c1")
        ],
    )
    want = desired_state(
        properties=[Property("plan", "string", "free")],
        segments=[Segment("news")],
        topics=[Topic("weekly", "opt_in", "Weekly", "public")],
        contacts=[Contact("A@X.com ", "Ann", None, False, {"plan": "pro"}, {"news"}, {"weekly": "opt_out"})],
    )
    plan = diff(want, live)
    assert plan.empty, plan.changes
    assert plan.fingerprint.startswith("sha256:")
    assert plan.live_counts == {"property": 1, "segment": 1, "topic": 1, "contact": 1}


def test_creates_of_every_kind_and_new_contacts_carry_segments_and_topics():
    want = desired_state(
        properties=[Property("plan", "string")],
        segments=[Segment("news")],
        topics=[Topic("weekly", "opt_out", description="W")],
        contacts=[
            Contact(
                "New@X.com",
                first_name="N",
                properties={"plan": "pro", "x": None},
                segments={"news"},
                topics={"weekly": "opt_in"},
            )
        ],
    )
    plan = diff(want, State())
    kinds = sorted((c.kind, c.action) for c in plan.changes)
    assert kinds == [
        ("contact", "create"),
        ("property", "create"),
        ("segment", "create"),
        ("topic", "create"),
    ]
    (c,) = by(plan, "contact")
    assert c.key == "new@x.com" and c.email == "New@X.com"
    assert c.after == {
        "email": "New@X.com",
        "first_name": "N",
        "properties": {"plan": "pro", "x": None},
        "segments": ["news"],
        "topics": {"weekly": "opt_in"},
    }
    (t,) = by(plan, "topic")
    assert t.after == {"name": "weekly", "default_subscription": "opt_out", "description": "W"}
    assert not by(plan, "membership") and not by(plan, "subscription")


def test_contact_update_carries_only_changed_fields_and_property_keys():
    live = live_state(
        properties=[Property("plan", "string", id="p"), Property("n", "number", id="q")],
        contacts=[Contact("a@x.com", "Ann", "Old", False, {"plan": "free", "n": 5}, id="c1")],
    )
    want = desired_state(
        properties=[Property("plan", "string"), Property("n", "number")],
        contacts=[
            Contact("a@x.com", first_name="Ann", last_name="New", properties={"plan": "pro", "n": 5.0})
        ],
    )
    (c,) = diff(want, live).changes
    assert (c.kind, c.action, c.id) == ("contact", "update", "c1")
    assert c.before == {"last_name": "Old", "properties": {"plan": "free"}}
    assert c.after == {"last_name": "New", "properties": {"plan": "pro"}}


def test_omitted_fields_and_undeclared_objects_are_not_touched():
    live = live_state(
        properties=[Property("plan", "string", "free", id="p")],
        segments=[Segment("other", id="s")],
        topics=[Topic("t", id="t")],
        contacts=[
            Contact("a@x.com", "Ann", "Lee", True, {"plan": "x"}, {"other"}, id="c1"),
            Contact("b@x.com", id="c2"),
        ],
    )
    want = desired_state(contacts=[Contact("a@x.com")])
    assert diff(want, live).empty


def test_explicit_none_clears_a_field_and_empty_string_equals_none():
    live = live_state(
        properties=[Property("plan", "string", id="p")],
        contacts=[Contact("a@x.com", "Ann", "", False, {"plan": "x"}, id="c1")],
    )
    want = desired_state(
        properties=[Property("plan", "string")],
        contacts=[Contact("a@x.com", first_name=None, last_name=None, properties={"plan": None})],
    )
    (c,) = diff(want, live).changes
    assert c.after == {"first_name": None, "properties": {"plan": None}}


def test_missing_live_property_value_counts_as_none():
    live = live_state(
        properties=[Property("plan", "string", id="p")], contacts=[Contact("a@x.com", properties={}, id="c")]
    )
    assert diff(
        desired_state(
            properties=[Property("plan", "string")], contacts=[Contact("a@x.com", properties={"plan": None})]
        ),
        live,
    ).empty
    (c,) = diff(
        desired_state(
            properties=[Property("plan", "string")], contacts=[Contact("a@x.com", properties={"plan": "p"})]
        ),
        live,
    ).changes
    assert c.before == {"properties": {"plan": None}}


def test_unread_live_values_are_an_error_not_a_silent_match():
    live = live_state(contacts=[Contact("a@x.com", properties=UNSET, topics=UNSET, id="c")])
    with pytest.raises(DiffError, match="not read"):
        diff(desired_state(contacts=[Contact("a@x.com", properties={"plan": "p"})]), live)
    with pytest.raises(DiffError, match="not read"):
        diff(desired_state(contacts=[Contact("a@x.com", topics={"t": "opt_in"})]), live)


def test_read_scope_lists_only_contacts_with_managed_values():
    want = desired_state(
        contacts=[
            Contact("A@x.com", properties={"p": 1}),
            Contact("b@x.com", topics={"t": "opt_in"}),
            Contact("c@x.com"),
        ]
    )
    assert read_scope(want) == ({"a@x.com"}, {"b@x.com"})


def test_property_updates_and_replacements():
    live = live_state(
        properties=[Property("plan", "string", "free", id="p1"), Property("n", "string", id="p2")],
        contacts=[Contact("a@x.com", properties={"n": "5"}, id="c")],
    )
    want = desired_state(
        properties=[Property("plan", "string", "basic"), Property("n", "number")],
        contacts=[Contact("a@x.com", properties={"n": 5})],
    )
    plan = diff(want, live)
    (u,) = by(plan, "property", "update")
    assert (u.key, u.before, u.after, u.id) == (
        "plan",
        {"fallback_value": "free"},
        {"fallback_value": "basic"},
        "p1",
    )
    (r,) = by(plan, "property", "replace")
    assert (r.key, r.before["type"], r.after["type"], r.id) == ("n", "string", "number", "p2")
    assert any("drops its values" in w for w in plan.warnings)
    # the replace drops the contact's value: the declared one is written again
    (c,) = by(plan, "contact", "update")
    assert c.after == {"properties": {"n": 5}}


def test_topic_updates_and_replacements_reset_subscriptions():
    live = live_state(
        topics=[Topic("a", "opt_in", "old", "private", id="t1"), Topic("b", "opt_in", id="t2")],
        contacts=[
            Contact("x@x.com", topics={"b": "opt_out"}, id="c"),
            Contact("y@x.com", topics={"b": "opt_in"}, id="d"),
        ],
    )
    want = desired_state(
        topics=[Topic("a", "opt_in", "new", UNSET), Topic("b", "opt_out")],
        contacts=[Contact("x@x.com", topics={"b": "opt_out"}), Contact("y@x.com", topics={"b": "opt_in"})],
    )
    plan = diff(want, live)
    (u,) = by(plan, "topic", "update")
    assert (u.before, u.after) == ({"description": "old"}, {"description": "new"})
    (r,) = by(plan, "topic", "replace")
    assert r.key == "b" and r.after["default_subscription"] == "opt_out"
    # after the replace the default is opt_out: x's own opt-out is carried to the new topic
    # (it stays explicit, #23), y must opt in again (the files declare it)
    s, t = by(plan, "subscription")
    assert (s.key, s.before, s.after) == ("x@x.com", {"b": "opt_out"}, {"b": "opt_out"})
    assert (t.key, t.before, t.after) == ("y@x.com", {"b": "opt_out"}, {"b": "opt_in"})


def test_subscription_defaults_count_for_unlisted_topics():
    live = live_state(
        topics=[Topic("in", "opt_in", id="1"), Topic("out", "opt_out", id="2")],
        contacts=[Contact("a@x.com", topics={}, id="c")],
    )
    assert diff(
        desired_state(
            topics=[Topic("in"), Topic("out", "opt_out")],
            contacts=[Contact("a@x.com", topics={"in": "opt_in", "out": "opt_out"})],
        ),
        live,
    ).empty
    (s,) = diff(
        desired_state(
            topics=[Topic("in"), Topic("out", "opt_out")],
            contacts=[Contact("a@x.com", topics={"in": "opt_out", "out": "opt_in"})],
        ),
        live,
    ).changes
    assert (s.kind, s.before, s.after) == (
        "subscription",
        {"in": "opt_in", "out": "opt_out"},
        {"in": "opt_out", "out": "opt_in"},
    )


def test_resubscribe_guard_on_the_global_flag_and_explicit_topic_opt_outs():
    live = live_state(
        topics=[Topic("t", "opt_in", id="t")],
        contacts=[Contact("a@x.com", unsubscribed=True, topics={"t": "opt_out"}, id="c")],
    )
    want = desired_state(
        topics=[Topic("t")], contacts=[Contact("a@x.com", unsubscribed=False, topics={"t": "opt_in"})]
    )
    guarded = diff(want, live)
    assert guarded.empty
    assert len(guarded.warnings) == 2 and all("--allow-resubscribe" in w for w in guarded.warnings)
    allowed = diff(want, live, allow_resubscribe=True)
    assert sorted((c.kind, c.action) for c in allowed.changes) == [
        ("contact", "update"),
        ("subscription", "update"),
    ]
    # unsubscribing is always allowed
    (c,) = diff(
        desired_state(contacts=[Contact("a@x.com", unsubscribed=True)]),
        live_state(contacts=[Contact("a@x.com", unsubscribed=False, id="c")]),
    ).changes
    assert c.after == {"unsubscribed": True}


def test_authoritative_membership_removes_undeclared_members_additive_does_not():
    live = live_state(
        segments=[Segment("auth", id="s1"), Segment("add", id="s2")],
        contacts=[
            Contact("a@x.com", segments={"auth", "add"}, id="a"),
            Contact("b@x.com", segments={"auth", "add"}, id="b"),
            Contact("c@x.com", segments=set(), id="c"),
        ],
    )
    want = desired_state(
        segments=[Segment("auth"), Segment("add", membership="additive")],
        contacts=[Contact("a@x.com", segments={"auth"}), Contact("c@x.com", segments={"auth", "add"})],
    )
    plan = diff(want, live)
    got = sorted((c.action, c.key, c.parent, c.id) for c in plan.changes)
    assert got == [
        ("create", "c@x.com", "add", "c"),
        ("create", "c@x.com", "auth", "c"),
        ("delete", "b@x.com", "auth", "b"),
    ]
    assert all(c.kind == "membership" for c in plan.changes)


def test_pruning_and_no_membership_removal_for_deleted_contacts():
    live = live_state(
        properties=[Property("old", "string", id="p")],
        segments=[Segment("s", id="s"), Segment("gone", id="g")],
        topics=[Topic("t", id="t")],
        contacts=[Contact("a@x.com", segments={"s"}, id="a"), Contact("b@x.com", segments={"s"}, id="b")],
    )
    policy = Policy(prune_contacts=True, prune_segments=True, prune_topics=True, prune_properties=True)
    want = desired_state(
        segments=[Segment("s")], contacts=[Contact("a@x.com", segments={"s"})], policy=policy
    )
    plan = diff(want, live)
    got = sorted((c.kind, c.action, c.key) for c in plan.changes)
    assert got == [
        ("contact", "delete", "b@x.com"),
        ("property", "delete", "old"),
        ("segment", "delete", "gone"),
        ("topic", "delete", "t"),
    ]
    # without prune nothing is deleted, and b is only removed from the authoritative segment
    want.policy = Policy()
    got = sorted((c.kind, c.action, c.key) for c in diff(want, live).changes)
    assert got == [("membership", "delete", "b@x.com")]


def test_protected_contacts_are_never_deleted():
    live = live_state(contacts=[Contact("a@x.com", id="a"), Contact("b@x.com", id="b")])
    want = desired_state(contacts=[Contact("a@x.com", protect=True)], policy=Policy(prune_contacts=True))
    plan = diff(want, live)
    assert [(c.action, c.key) for c in plan.changes] == [("delete", "b@x.com")]


def test_plan_records_policy_and_scope_and_round_trips():
    from resend_iac.engine.plan import Plan

    want = desired_state(
        contacts=[Contact("a@x.com", properties={"p": 1})], policy=Policy(max_delete_fraction=0.5)
    )
    plan = diff(want, State())
    assert plan.policy["max_delete_fraction"] == 0.5
    assert plan.scope["property_emails"] == ["a@x.com"]
    again = Plan.from_dict(plan.to_dict())
    assert again.to_dict() == plan.to_dict()
