"""What a plan records beside its changes, and in what order, as apply and the reader use it:
the policy it is checked against, which contacts' details were read and which apply re-reads,
the order changes are carried out in, what a delete loses, and live contacts left alone."""

from __future__ import annotations

import dataclasses
import gc

from resend_iac.engine import diff, read_scope
from resend_iac.engine.consent import Consent
from resend_iac.engine.safety import policy_from_dict
from resend_iac.model import Contact, Policy, Property, Segment, State, Topic


def state(*, properties=(), segments=(), topics=(), contacts=(), policy=None) -> State:
    s = State()
    for p in properties:
        s.properties[p.key] = p
    for g in segments:
        s.segments[g.name] = g
    for t in topics:
        s.topics[t.name] = t
    for c in contacts:
        s.add_contact(c)
    if policy is not None:
        s.policy = policy
    return s


def test_the_plan_is_checked_against_the_policy_of_the_files_it_was_made_from():
    # every setting of the policy away from its default: each one must reach the plan
    changed = {}
    for f in dataclasses.fields(Policy):
        default = f.default
        if isinstance(default, bool):
            changed[f.name] = not default
        elif isinstance(default, int):
            changed[f.name] = default + 3
        else:
            changed[f.name] = round(default / 4 + 0.01, 3)
    policy = Policy(**changed)
    plan = diff(state(policy=policy), state())
    assert policy_from_dict(plan.policy) == policy
    assert policy_from_dict(diff(state(), state()).policy) == Policy()


def test_a_new_contact_carries_exactly_what_is_declared():
    want = state(
        segments=[Segment(name="news")],
        contacts=[
            Contact(email="a@x.com", first_name="A"),
            Contact(email="b@x.com", properties={"tier": "pro"}, topics={"t": "opt_out"}, segments={"news"}),
        ],
        topics=[Topic(name="t", default_subscription="opt_in")],
        properties=[Property(key="tier", type="string")],
    )
    plan = diff(want, state())
    created = {c.key: c.after for c in plan.changes if c.kind == "contact"}
    assert created["a@x.com"] == {"email": "a@x.com", "first_name": "A", "segments": []}
    assert created["b@x.com"] == {
        "email": "b@x.com",
        "properties": {"tier": "pro"},
        "segments": ["news"],
        "topics": {"t": "opt_out"},
    }
    segment = next(c for c in plan.changes if c.kind == "segment")
    assert (segment.action, segment.after) == ("create", {"name": "news"})


def test_which_contacts_details_are_read_and_which_apply_reads_again():
    topics = [Topic(name="t", default_subscription="opt_in", id="t1")]
    props = [Property(key="tier", type="string", id="p1")]
    live = state(
        topics=topics,
        properties=props,
        contacts=[
            Contact(email="p@x.com", first_name="P", properties={"tier": "a"}, topics={}, id="c1"),
            Contact(email="t@x.com", properties={}, topics={"t": "opt_in"}, id="c2"),
            Contact(email="same@x.com", properties={"tier": "a"}, topics={"t": "opt_in"}, id="c3"),
            Contact(email="name@x.com", first_name="old", properties={}, topics={}, id="c4"),
            Contact(email="other@x.com", properties={"tier": "a"}, topics={}, id="c5"),  # not declared
        ],
    )
    want = state(
        topics=[Topic(name="t", default_subscription="opt_in")],
        properties=[Property(key="tier", type="string")],
        contacts=[
            Contact(email="p@x.com", first_name="Q", properties={"tier": "b"}),  # manages properties
            Contact(email="t@x.com", topics={"t": "opt_out"}),  # manages topics
            Contact(email="same@x.com", properties={"tier": "a"}, topics={"t": "opt_in"}),  # unchanged
            Contact(email="name@x.com", first_name="new"),  # manages neither
            Contact(email="new@x.com", properties={"tier": "n"}, topics={"t": "opt_out"}),  # created
        ],
    )
    plan = diff(want, live)
    assert plan.scope == {
        "property_emails": ["new@x.com", "p@x.com", "same@x.com"],
        "topic_emails": ["new@x.com", "same@x.com", "t@x.com"],
    }
    assert plan.scope["property_emails"] == sorted(read_scope(want)[0])
    assert plan.verify["property_emails"] == ["p@x.com"]  # changed, and its values matter
    assert plan.verify["topic_emails"] == ["t@x.com"]
    assert plan.verify["fingerprint"].startswith("sha256:")
    assert plan.verify["fingerprint"] != plan.fingerprint  # narrowed to those two contacts
    # a drift in the details of a contact the plan does not change leaves it alone
    live.contacts["other@x.com"].properties = {"tier": "drifted"}
    assert diff(want, live).verify["fingerprint"] == plan.verify["fingerprint"]
    live.contacts["p@x.com"].properties = {"tier": "c"}
    assert diff(want, live).verify["fingerprint"] != plan.verify["fingerprint"]


def test_changes_come_in_the_order_apply_carries_them_out():
    live = state(
        segments=[Segment(name="a", id="s1"), Segment(name="z", id="s2")],
        contacts=[Contact(email="m@x.com", segments={"a"}, id="c1")],
    )
    want = state(
        properties=[Property(key="k", type="string")],
        segments=[Segment(name="a", membership="authoritative"), Segment(name="z"), Segment(name="b")],
        topics=[Topic(name="t", default_subscription="opt_in")],
        contacts=[Contact(email="m@x.com", segments={"z"}), Contact(email="a@x.com", segments={"b"})],
    )
    plan = diff(want, live)
    assert [(c.kind, c.action, c.key, c.parent) for c in plan.changes] == [
        ("property", "create", "k", None),
        ("segment", "create", "b", None),
        ("topic", "create", "t", None),
        ("contact", "create", "a@x.com", None),
        ("membership", "delete", "m@x.com", "a"),  # by segment name: a before z
        ("membership", "create", "m@x.com", "z"),
    ]
    joined, left = plan.changes[-1], plan.changes[-2]
    assert joined.after == {"segment": "z"} and left.before == {"segment": "a"}


def test_a_deleted_contact_records_what_is_lost():
    live = state(
        segments=[Segment(name="news", id="s1")],
        contacts=[Contact(email="Old@x.com", first_name="O", unsubscribed=True, segments={"news"}, id="c9")],
    )
    # an unsubscribed contact is deleted only with --prune-unsubscribed (#23)
    plan = diff(state(policy=Policy(prune_contacts=True)), live, consent=Consent(prune_unsubscribed=True))
    (c,) = plan.changes
    assert (c.action, c.key, c.id, c.email) == ("delete", "old@x.com", "c9", "Old@x.com")
    assert diff(state(policy=Policy(prune_contacts=True)), live).empty  # kept without it
    assert c.before == {"email": "Old@x.com", "first_name": "O", "unsubscribed": True, "segments": ["news"]}


def test_a_field_left_unmanaged_does_not_stop_the_fields_after_it():
    live = state(
        contacts=[Contact(email="a@x.com", first_name="A", last_name="Old", unsubscribed=False, id="c")]
    )
    want = state(contacts=[Contact(email="a@x.com", last_name="New", unsubscribed=True)])
    (c,) = diff(want, live).changes
    assert (c.before, c.after) == (
        {"last_name": "Old", "unsubscribed": False},
        {"last_name": "New", "unsubscribed": True},
    )


def test_values_of_a_replaced_property_are_written_again():
    live = state(
        properties=[Property(key="n", type="string", id="p1")],
        contacts=[Contact(email="a@x.com", properties={"n": 5}, id="c")],
    )
    want = state(
        properties=[Property(key="n", type="number")],
        contacts=[Contact(email="a@x.com", properties={"n": 5})],
    )
    plan = diff(want, live)
    assert [(c.kind, c.action) for c in plan.changes] == [("property", "replace"), ("contact", "update")]
    assert plan.changes[1].after == {"properties": {"n": 5}}


def test_a_replaced_topic_is_warned_about():
    live = state(topics=[Topic(name="t", default_subscription="opt_in", id="t1")])
    plan = diff(state(topics=[Topic(name="t", default_subscription="opt_out")]), live)
    assert [c.action for c in plan.changes] == ["replace"]
    assert len(plan.warnings) == 1 and "topic 't' is replaced" in plan.warnings[0]


def test_a_topic_nobody_declares_counts_as_opted_in():
    live = state(contacts=[Contact(email="a@x.com", topics={}, id="c")])
    assert diff(state(contacts=[Contact(email="a@x.com", topics={"x": "opt_in"})]), live).empty
    (c,) = diff(state(contacts=[Contact(email="a@x.com", topics={"x": "opt_out"})]), live).changes
    assert (c.kind, c.before, c.after) == ("subscription", {"x": "opt_in"}, {"x": "opt_out"})


def test_live_contacts_whose_emails_differ_only_by_case_are_left_alone():
    live = state(
        segments=[Segment(name="s", id="s1")],
        contacts=[Contact(email="a@x.com", first_name="A", segments={"s"}, id="c1")],
    )
    live.email_collisions = {"a@x.com": ["a@x.com", "A@x.com"]}
    want = state(
        segments=[Segment(name="s", membership="authoritative")],
        contacts=[
            Contact(email="a@x.com", first_name="B", topics={"t": "opt_out"}),
            Contact(email="b@x.com"),
        ],
        policy=Policy(prune_contacts=True),
    )
    live.contacts["a@x.com"].topics = {}
    plan = diff(want, live)
    assert [(c.kind, c.key) for c in plan.changes] == [("contact", "b@x.com")]
    (warning,) = plan.warnings
    assert "A@x.com, a@x.com" in warning and "differ only by case" in warning
    live.email_collisions = {}
    assert {c.kind for c in diff(want, live).changes} == {"contact", "subscription", "membership"}


def test_the_diff_leaves_the_garbage_collector_as_it_found_it():
    gc.enable()
    diff(state(), state())
    assert gc.isenabled()
    gc.disable()
    try:
        diff(state(), state())
        assert not gc.isenabled()
    finally:
        gc.enable()
